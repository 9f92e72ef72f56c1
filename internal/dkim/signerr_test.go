package dkim

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
)

// errTokenGone stands for a hardware signer's own error.
var errTokenGone = errors.New("token gone")

// failingSigner has a public key and makes no signature.
type failingSigner struct{ pub ed25519.PublicKey }

func (f failingSigner) Public() crypto.PublicKey { return f.pub }
func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errTokenGone
}

// A signer that fails gives ErrKeyMismatch with the signer's own error
// kept in the chain, so that the caller can tell a token gone (a 451) by
// errors.Is, not by reading the text.
func TestSignerErrorKept(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Sign(strings.NewReader("From: a@example.com\r\n\r\nbody\r\n"), &SignOptions{
		Keys: []SignKey{{Domain: "example.com", Selector: "s1", Signer: failingSigner{pub}}},
	})
	if !errors.Is(err, ErrKeyMismatch) || !errors.Is(err, errTokenGone) {
		t.Fatalf("Sign with a failing signer: %v, want ErrKeyMismatch and the signer's error in the chain", err)
	}
}
