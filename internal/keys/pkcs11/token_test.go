//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/keys/pkcs11/pkcs11test"
)

func open(t *testing.T, cfg pkcs11.Config) *pkcs11.Token {
	t.Helper()
	tok, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// verify checks sig over digest with pub the way receivers do.
func verify(t *testing.T, pub crypto.PublicKey, digest, sig []byte) {
	t.Helper()
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig); err != nil {
			t.Fatalf("RSA signature from the token does not verify: %v", err)
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, digest, sig) {
			t.Fatal("Ed25519 signature from the token does not verify with ed25519.Verify")
		}
	default:
		t.Fatalf("public key %T", pub)
	}
}

// RFC 6376 §3.3.1 (rsa-sha256 over a DigestInfo) and RFC 8463 §3
// (ed25519-sha256 over the SHA-256 digest): keys generated in the token
// sign what crypto/rsa and crypto/ed25519 verify.
func TestGenerateAndSign(t *testing.T) {
	tok := open(t, pkcs11test.Token(t))
	specs := []keys.Spec{
		{Algorithm: keys.RSA, Bits: 2048},
		{Algorithm: keys.RSA, Bits: 3072},
		{Algorithm: keys.RSA, Bits: 4096},
		{Algorithm: keys.Ed25519},
	}
	for _, spec := range specs {
		t.Run(spec.String(), func(t *testing.T) {
			if spec.Bits == 4096 && testing.Short() {
				t.Skip("RSA 4096 generation is slow")
			}
			o, pub, err := tok.Generate(spec, pkcs11.ObjectLabel("example.com", "s"+spec.String()))
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			got, err := keys.SpecOf(pubSigner{pub})
			if err != nil || got != (keys.Spec{Algorithm: spec.Algorithm, Bits: max(spec.Bits, 256)}) {
				t.Fatalf("generated %v (%v), want %v", got, err, spec)
			}
			sg, err := tok.Signer(spec.Algorithm, o)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			if !equalPublic(sg.Public(), pub) {
				t.Fatal("Signer's public key differs from the generated one")
			}
			digest := sha256.Sum256([]byte("the header hash"))
			opts := crypto.SignerOpts(crypto.SHA256)
			if spec.Algorithm == keys.Ed25519 {
				opts = crypto.Hash(0)
			}
			sig, err := sg.Sign(nil, digest[:], opts)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			verify(t, pub, digest[:], sig)
		})
	}
}

type pubSigner struct{ pub crypto.PublicKey }

func (p pubSigner) Public() crypto.PublicKey                                      { return p.pub }
func (pubSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) { return nil, nil }

func equalPublic(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// The signature a DKIM Signer makes through the token verifies with the
// dkim package (and so with the record dkimd publishes): the token signs
// exactly the bytes dkim hands to crypto.Signer, Ed25519 included.
func TestDKIMThroughToken(t *testing.T) {
	tok := open(t, pkcs11test.Token(t))
	msg := "From: a@example.com\r\nTo: b@example.org\r\nSubject: hsm\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n\r\nSigned inside the token.\r\n"
	for _, alg := range []keys.Algorithm{keys.RSA, keys.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			o, pub, err := tok.Generate(keys.Spec{Algorithm: alg}, pkcs11.ObjectLabel("example.com", "hsm"))
			if err != nil {
				t.Fatal(err)
			}
			sg, err := tok.Signer(alg, o)
			if err != nil {
				t.Fatal(err)
			}
			sigs, err := dkim.Sign(strings.NewReader(msg), &dkim.SignOptions{Keys: []dkim.SignKey{{Domain: "example.com", Selector: "hsm", Signer: sg}}})
			if err != nil {
				t.Fatalf("dkim.Sign: %v", err)
			}
			rec, err := dkim.Publish("hsm", "example.com", pub)
			if err != nil {
				t.Fatal(err)
			}
			res, err := dkim.Verify(context.Background(), strings.NewReader(sigs[0]+msg), &dkim.VerifyOptions{
				Resolver: dkim.ResolverFunc(func(_ context.Context, name string) ([]string, error) {
					if name != rec.Name {
						return nil, fmt.Errorf("no record %s", name)
					}
					return []string{rec.Value}, nil
				}),
			})
			if err != nil || len(res) != 1 || res[0].Status != dkim.StatusPass {
				t.Fatalf("dkim.Verify: %v %+v", err, res)
			}
		})
	}
}

// The promise: the private key never leaves the token. Both kinds
// are sensitive and not extractable, and the token refuses to give their
// private values (CKR_ATTRIBUTE_SENSITIVE).
func TestPrivateKeyStaysInToken(t *testing.T) {
	tok := open(t, pkcs11test.Token(t))
	for _, alg := range []keys.Algorithm{keys.RSA, keys.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			o, _, err := tok.Generate(keys.Spec{Algorithm: alg}, pkcs11.ObjectLabel("example.com", "secret"))
			if err != nil {
				t.Fatal(err)
			}
			a, err := pkcs11.ReadPrivateAttributes(tok, o)
			if err != nil {
				t.Fatal(err)
			}
			if !a.Sensitive || a.Extractable || !a.NeverExtractable || !a.Private || !a.Sign || a.Decrypt {
				t.Fatalf("private key attributes %+v: want sensitive, private, never extractable, sign only", a)
			}
			if a.ValueErr == nil || !strings.Contains(a.ValueErr.Error(), "CKR_ATTRIBUTE_SENSITIVE") {
				t.Fatalf("reading the private value: %v, want CKR_ATTRIBUTE_SENSITIVE", a.ValueErr)
			}
			if len(a.Value) > 0 {
				t.Fatalf("token gave %d bytes of the private key", len(a.Value))
			}
		})
	}
}

// A wrong PIN is a login error that names the token, never the PIN, and is
// not tried again (more wrong PINs would lock a real token).
func TestWrongPIN(t *testing.T) {
	cfg := pkcs11test.Token(t)
	bad := cfg
	bad.PIN = "wrong-pin-4711"
	tok, err := pkcs11.New(bad)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	err = tok.Connect()
	if !errors.Is(err, pkcs11.ErrLogin) || !strings.Contains(err.Error(), "refused the PIN") || !strings.Contains(err.Error(), cfg.Token) {
		t.Fatalf("Connect with a wrong PIN: %v, want ErrLogin naming the token", err)
	}
	if strings.Contains(err.Error(), bad.PIN) {
		t.Fatalf("error carries the PIN: %v", err)
	}
	attempts := pkcs11.LoginAttempts(tok)
	for range 3 {
		if _, err := tok.Signer(keys.RSA, pkcs11.Object{Label: "x", ID: "01"}); !errors.Is(err, pkcs11.ErrLogin) {
			t.Fatalf("Signer after a refused PIN: %v, want ErrLogin", err)
		}
	}
	if n := pkcs11.LoginAttempts(tok); n != attempts {
		t.Fatalf("the refused PIN was tried %d more times", n-attempts)
	}
}

func TestConfigErrors(t *testing.T) {
	cfg := pkcs11test.Token(t)
	tests := []struct {
		name   string
		change func(*pkcs11.Config)
		want   error
		text   string
	}{
		{"no module", func(c *pkcs11.Config) { c.Module = "" }, pkcs11.ErrConfig, "module path"},
		{"no token", func(c *pkcs11.Config) { c.Token = "" }, pkcs11.ErrConfig, "token label"},
		{"module missing", func(c *pkcs11.Config) { c.Module = "/nonexistent/libpkcs11.so" }, pkcs11.ErrToken, "/nonexistent/libpkcs11.so"},
		{"token missing", func(c *pkcs11.Config) { c.Token = "no-such-token" }, pkcs11.ErrToken, `no token labelled "no-such-token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.change(&c)
			tok, err := pkcs11.Open(c)
			if err == nil {
				tok.Close()
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Open: %v, want %v saying %q", err, tt.want, tt.text)
			}
		})
	}
}

// A token that disappears under a running signer makes Sign fail with
// ErrToken: never a signature, never a hang.
func TestRemovedToken(t *testing.T) {
	cfg := pkcs11test.Token(t)
	cfg.RetryInterval = time.Hour
	tok := open(t, cfg)
	for _, alg := range []keys.Algorithm{keys.RSA, keys.Ed25519} {
		o, _, err := tok.Generate(keys.Spec{Algorithm: alg}, pkcs11.ObjectLabel("example.com", "gone-"+string(alg)))
		if err != nil {
			t.Fatal(err)
		}
		sg, err := tok.Signer(alg, o)
		if err != nil {
			t.Fatal(err)
		}
		defer func(alg keys.Algorithm, sg crypto.Signer) {
			digest := sha256.Sum256([]byte("after"))
			opts := crypto.SignerOpts(crypto.SHA256)
			if alg == keys.Ed25519 {
				opts = crypto.Hash(0)
			}
			for range 2 { // the failure, then the remembered failure
				sig, err := sg.Sign(nil, digest[:], opts)
				if !errors.Is(err, pkcs11.ErrToken) || sig != nil {
					t.Errorf("%s: Sign with the token gone: %v, want ErrToken", alg, err)
				}
				t.Logf("%s: %v", alg, err)
				if err != nil && !strings.Contains(err.Error(), cfg.Token) {
					t.Errorf("%s: error does not name the token: %v", alg, err)
				}
			}
		}(alg, sg)
	}
	pkcs11test.Remove(t, cfg.Token)
}

// Many signers at once, more than the sessions, share the pool.
func TestConcurrentSigning(t *testing.T) {
	cfg := pkcs11test.Token(t)
	cfg.MaxSessions = 3
	tok := open(t, cfg)
	var signers []crypto.Signer
	for _, alg := range []keys.Algorithm{keys.RSA, keys.Ed25519} {
		o, _, err := tok.Generate(keys.Spec{Algorithm: alg}, pkcs11.ObjectLabel("example.com", "many-"+string(alg)))
		if err != nil {
			t.Fatal(err)
		}
		sg, err := tok.Signer(alg, o)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, sg)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			sg := signers[i%2]
			for j := range 10 {
				digest := sha256.Sum256(fmt.Appendf(nil, "message %d/%d", i, j))
				opts := crypto.SignerOpts(crypto.SHA256)
				if _, ok := sg.Public().(ed25519.PublicKey); ok {
					opts = crypto.Hash(0)
				}
				sig, err := sg.Sign(nil, digest[:], opts)
				if err == nil {
					switch pub := sg.Public().(type) {
					case *rsa.PublicKey:
						err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
					case ed25519.PublicKey:
						if !ed25519.Verify(pub, digest[:], sig) {
							err = errors.New("bad Ed25519 signature")
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Destroy removes both halves; the key cannot be opened after.
func TestDestroy(t *testing.T) {
	tok := open(t, pkcs11test.Token(t))
	for _, alg := range []keys.Algorithm{keys.RSA, keys.Ed25519} {
		o, _, err := tok.Generate(keys.Spec{Algorithm: alg}, pkcs11.ObjectLabel("example.com", "doomed"))
		if err != nil {
			t.Fatal(err)
		}
		if err := tok.Destroy(alg, o); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		if _, err := tok.Signer(alg, o); !errors.Is(err, pkcs11.ErrKeyNotFound) {
			t.Fatalf("Signer after Destroy: %v, want ErrKeyNotFound", err)
		}
		if err := tok.Destroy(alg, o); !errors.Is(err, pkcs11.ErrKeyNotFound) {
			t.Fatalf("second Destroy: %v, want ErrKeyNotFound", err)
		}
	}
}

// Options the token signer does not offer fail before reaching it.
func TestSignOptions(t *testing.T) {
	tok := open(t, pkcs11test.Token(t))
	o, _, err := tok.Generate(keys.Spec{Algorithm: keys.Ed25519}, pkcs11.ObjectLabel("example.com", "opts"))
	if err != nil {
		t.Fatal(err)
	}
	sg, err := tok.Signer(keys.Ed25519, o)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(nil)
	if _, err := sg.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, pkcs11.ErrUnsupported) {
		t.Fatalf("Ed25519ph: %v, want ErrUnsupported", err)
	}
	ro, _, err := tok.Generate(keys.Spec{Algorithm: keys.RSA}, pkcs11.ObjectLabel("example.com", "ropts"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tok.Signer(keys.RSA, ro)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"no hash", d[:], crypto.Hash(0)},
		{"SHA-1 (RFC 8301 forbids rsa-sha1)", d[:20], crypto.SHA1},
		{"digest of the wrong length", d[:20], crypto.SHA256},
		{"RSA-PSS", d[:], &rsa.PSSOptions{Hash: crypto.SHA256}},
		{"unknown hash", d[:], crypto.Hash(99)},
	} {
		if _, err := rs.Sign(nil, tc.digest, tc.opts); !errors.Is(err, pkcs11.ErrUnsupported) {
			t.Errorf("RSA, %s: %v, want ErrUnsupported", tc.name, err)
		}
	}
	if _, _, err := tok.Generate(keys.Spec{Algorithm: keys.RSA, Bits: 1024}, "x"); !errors.Is(err, pkcs11.ErrUnsupported) {
		t.Fatalf("RSA 1024: %v, want ErrUnsupported", err)
	}
}

// A module that fails under a running signer (here: finalised behind its
// back, as a crashed HSM client library would leave it) fails the
// signatures under way with ErrToken; once the module works again the same
// Signer signs again, without a restart.
func TestTokenComesBack(t *testing.T) {
	cfg := pkcs11test.Token(t)
	cfg.RetryInterval = 50 * time.Millisecond
	tok := open(t, cfg)
	o, _, err := tok.Generate(keys.Spec{Algorithm: keys.Ed25519}, pkcs11.ObjectLabel("example.com", "back"))
	if err != nil {
		t.Fatal(err)
	}
	sg, err := tok.Signer(keys.Ed25519, o)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("again"))
	if _, err := sg.Sign(nil, digest[:], crypto.Hash(0)); err != nil {
		t.Fatal(err)
	}
	pkcs11test.Finalize(t)
	if _, err := sg.Sign(nil, digest[:], crypto.Hash(0)); !errors.Is(err, pkcs11.ErrToken) {
		t.Fatalf("Sign with the module finalised: %v, want ErrToken", err)
	}
	var sig []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if sig, err = sg.Sign(nil, digest[:], crypto.Hash(0)); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the token did not come back: %v", err)
	}
	if !ed25519.Verify(sg.Public().(ed25519.PublicKey), digest[:], sig) {
		t.Fatal("signature after the reconnection does not verify")
	}
}
