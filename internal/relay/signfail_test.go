package relay_test

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/relay"
)

// goneSigner is a key whose token went away after it was opened: its
// public half is there, every signature fails.
type goneSigner struct{ crypto.Signer }

func (g goneSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, fmt.Errorf("%w: token \"bank-hsm\": sign: pkcs11: 0x32: CKR_DEVICE_REMOVED", pkcs11.ErrToken)
}

type goneKeys struct{ relay.KeySource }

func (g goneKeys) Signer(ctx context.Context, r keys.Ref) (crypto.Signer, error) {
	sg, err := g.KeySource.Signer(ctx, r)
	if err != nil {
		return nil, err
	}
	return goneSigner{sg}, nil
}

// A key that opens but cannot sign (a PKCS#11 token removed under it, a
// module error) defers the message with 451 4.3.0 after DATA: never
// unsigned, never the token's error to the client, the cause in the log.
func TestSignatureFailsAfterData(t *testing.T) {
	f := newFixture(t, func(o *relay.Options) { o.Keys = goneKeys{o.Keys} })
	c := f.login("alice", pwAlice)
	code, m := c.send("alice@tenant-a.example", []string{"bob@elsewhere.example"}, message("From: alice@tenant-a.example"))
	if code != 451 || !strings.HasPrefix(m, "4.3.0") {
		t.Errorf("DATA: %d %s, want 451 4.3.0", code, m)
	}
	if strings.Contains(m, "bank-hsm") || strings.Contains(m, "CKR_") || strings.Contains(m, "pkcs11") {
		t.Errorf("reply %q leaks the token's error", m)
	}
	f.none()
	logs := f.logs.String()
	if !strings.Contains(logs, "signature due but not made") || !strings.Contains(logs, `token \"bank-hsm\"`) || !strings.Contains(logs, "CKR_DEVICE_REMOVED") {
		t.Errorf("the log does not say the token failed:\n%s", logs)
	}
}
