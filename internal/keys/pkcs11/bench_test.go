//go:build cgo

package pkcs11_test

import (
	"crypto"
	"crypto/sha256"
	"runtime"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/keys/pkcs11/pkcs11test"
)

// BenchmarkSign compares one signature over a ready SHA-256 digest (what
// the dkim package asks of a key per message) made by SoftHSM through
// PKCS#11 with the same kind of key sealed in the database and opened in
// memory (OpenSSL's libcrypto for RSA when it loads, Go for Ed25519): one
// signer at a time, and 16 at once. docs/performance.md has the figures.
func BenchmarkSign(b *testing.B) {
	cfg := pkcs11test.Token(b)
	tok, err := pkcs11.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tok.Close()
	lib, _ := keys.LoadOpenSSL() // nil: Go's crypto/rsa
	digest := sha256.Sum256([]byte("header hash"))
	for _, spec := range []keys.Spec{{Algorithm: keys.RSA, Bits: 2048}, {Algorithm: keys.Ed25519}} {
		opts := crypto.SignerOpts(crypto.SHA256)
		if spec.Algorithm == keys.Ed25519 {
			opts = crypto.Hash(0)
		}
		o, _, err := tok.Generate(spec, pkcs11.ObjectLabel("example.com", "bench-"+spec.String()))
		if err != nil {
			b.Fatal(err)
		}
		hsm, err := tok.Signer(spec.Algorithm, o)
		if err != nil {
			b.Fatal(err)
		}
		mem, err := keys.Generate(nil, spec)
		if err != nil {
			b.Fatal(err)
		}
		memName := "sealed-go"
		if spec.Algorithm == keys.RSA && lib != nil {
			if mem, err = lib.Signer(mem); err != nil {
				b.Fatal(err)
			}
			memName = "sealed-openssl"
		}
		for _, s := range []struct {
			name string
			sg   crypto.Signer
		}{{"softhsm", hsm}, {memName, mem}} {
			b.Run(spec.String()+"/"+s.name+"/1", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.sg.Sign(nil, digest[:], opts); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(spec.String()+"/"+s.name+"/16", func(b *testing.B) {
				b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // 16 goroutines
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.sg.Sign(nil, digest[:], opts); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
