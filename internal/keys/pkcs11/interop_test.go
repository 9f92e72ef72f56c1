//go:build cgo

package pkcs11_test

import (
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/keys/pkcs11/pkcs11test"
	"github.com/dkimd/dkimd/internal/peertest"
)

// Signatures made inside the token verify in dkimpy and OpenDKIM, the
// verifiers receivers run: every RSA length a token key may have, and
// Ed25519 (RFC 8463) where the peer supports it.
func TestPeersVerifyTokenSignatures(t *testing.T) {
	py := peertest.Dkimpy(t)
	od := peertest.OpenDKIM(t)
	tok := open(t, pkcs11test.Token(t))
	specs := []keys.Spec{{Algorithm: keys.RSA, Bits: 2048}, {Algorithm: keys.RSA, Bits: 3072}, {Algorithm: keys.Ed25519}}
	if !testing.Short() {
		specs = append(specs, keys.Spec{Algorithm: keys.RSA, Bits: 4096})
	}
	records := map[string]string{}
	var sks []dkim.SignKey
	for _, spec := range specs {
		sel := "p11-" + spec.String()
		o, pub, err := tok.Generate(spec, pkcs11.ObjectLabel("example.com", sel))
		if err != nil {
			t.Fatal(err)
		}
		sg, err := tok.Signer(spec.Algorithm, o)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := dkim.Publish(sel, "example.com", pub)
		if err != nil {
			t.Fatal(err)
		}
		records[rec.Name] = rec.Value
		sks = append(sks, dkim.SignKey{Domain: "example.com", Selector: sel, Signer: sg})
	}
	// One signature a message: OpenDKIM checks at most three on one
	// message (MaximumSignaturesToVerify).
	msg := "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: from the token\r\n" +
		"Date: Mon, 7 Dec 2026 01:00:00 +0000\r\nMessage-ID: <p11@example.com>\r\n\r\nSigned inside a PKCS#11 token.\r\n"
	var msgs [][]byte
	for _, sk := range sks {
		sigs, err := dkim.Sign(strings.NewReader(msg), &dkim.SignOptions{Keys: []dkim.SignKey{sk}})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, []byte(sigs[0]+msg))
	}
	pvs, ovs := py.VerifyAll(msgs, records), od.Verify(msgs, records)
	for i, sk := range sks {
		ed := strings.HasSuffix(sk.Selector, "ed25519")
		if !pvs[i].Pass() && (!ed || py.Ed25519) {
			t.Errorf("dkimpy, %s: %s", sk.Selector, pvs[i])
		}
		if !ovs[i].Pass() && (!ed || od.Supports("ed25519-sha256")) {
			t.Errorf("OpenDKIM, %s: %s", sk.Selector, ovs[i])
		}
	}
}
