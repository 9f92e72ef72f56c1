package keys

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
)

// loadOpenSSL returns the library, or skips the test when it cannot be
// opened (fails instead under DKIMD_REQUIRE_PEERS=1, as CI runs).
func loadOpenSSL(t testing.TB) *OpenSSL {
	t.Helper()
	o, err := LoadOpenSSL()
	if err != nil {
		if os.Getenv("DKIMD_REQUIRE_PEERS") == "1" {
			t.Fatalf("OpenSSL required (DKIMD_REQUIRE_PEERS=1): %v", err)
		}
		t.Skipf("OpenSSL signing not testable here: %v (install libssl3, build with cgo)", err)
	}
	return o
}

func readRSA(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("../dkim/testdata/keys/" + name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// RSASSA-PKCS1-v1_5 is deterministic, so OpenSSL's signature must be Go's,
// byte for byte, for every key size and digest.
func TestOpenSSLSignsAsGoDoes(t *testing.T) {
	o := loadOpenSSL(t)
	if !strings.HasPrefix(o.Version(), "OpenSSL 3") {
		t.Errorf("Version() = %q, want OpenSSL 3.x", o.Version())
	}
	fresh, err := rsa.GenerateKey(rand.Reader, 1536)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*rsa.PrivateKey{readRSA(t, "rsa1024.pem"), readRSA(t, "rsa2048.pem"), readRSA(t, "rsa4096.pem"), fresh} {
		t.Run(fmt.Sprint(k.N.BitLen()), func(t *testing.T) {
			s, err := o.Signer(k)
			if err != nil {
				t.Fatal(err)
			}
			if _, isGo := s.(*rsa.PrivateKey); isGo {
				t.Fatal("Signer returned the Go key, want an OpenSSL signer")
			}
			if !s.Public().(*rsa.PublicKey).Equal(&k.PublicKey) {
				t.Fatal("Public() is not the key's public key")
			}
			for i := range 20 {
				digest := sha256.Sum256([]byte(fmt.Sprint("message ", i)))
				got, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				want, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Fatalf("digest %d: OpenSSL signature differs from Go's", i)
				}
			}
		})
	}
}

func TestOpenSSLSignerKeepsOtherKeys(t *testing.T) {
	o := loadOpenSSL(t)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	s, err := o.Signer(ed)
	if err != nil || !ed.Equal(s) {
		t.Fatalf("Signer(ed25519) = %T, %v; want the key itself", s, err)
	}
	var none *OpenSSL // nil: sign with Go
	k := readRSA(t, "rsa1024.pem")
	if s, err := none.Signer(k); err != nil || s != crypto.Signer(k) {
		t.Fatalf("nil OpenSSL Signer = %T, %v; want the Go key", s, err)
	}
}

func TestOpenSSLSignRefuses(t *testing.T) {
	o := loadOpenSSL(t)
	s, err := o.Signer(readRSA(t, "rsa1024.pem"))
	if err != nil {
		t.Fatal(err)
	}
	d256 := sha256.Sum256([]byte("x"))
	d1 := sha1.Sum([]byte("x"))
	for _, tc := range []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"sha1 (RFC 8301 forbids it)", d1[:], crypto.SHA1},
		{"PSS", d256[:], &rsa.PSSOptions{Hash: crypto.SHA256}},
		{"no hash", d256[:], crypto.Hash(0)},
		{"short digest", d256[:31], crypto.SHA256},
		{"long digest", append(d256[:], 0), crypto.SHA256},
		{"empty digest", nil, crypto.SHA256},
	} {
		if sig, err := s.Sign(nil, tc.digest, tc.opts); err == nil {
			t.Errorf("%s: signed (%d bytes), want an error", tc.name, len(sig))
		}
	}
}

// One signer serves every SMTP session at once.
func TestOpenSSLConcurrentSigning(t *testing.T) {
	o := loadOpenSSL(t)
	k := readRSA(t, "rsa1024.pem")
	s, err := o.Signer(k)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				digest := sha256.Sum256([]byte(fmt.Sprint(g, "/", i)))
				sig, err := s.Sign(nil, digest[:], crypto.SHA256)
				if err == nil {
					err = rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], sig)
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

// A signer whose signatures Go cannot verify is never handed out: here a
// key whose private exponents are off by two (libcrypto checks its CRT
// result and falls back to d, so both must be wrong for a bad signature).
func TestOpenSSLRefusesKeyThatSignsWrongly(t *testing.T) {
	o := loadOpenSSL(t)
	k := *readRSA(t, "rsa1024.pem")
	k.D = new(big.Int).Add(k.D, big.NewInt(2))
	k.Precomputed.Dp = new(big.Int).Add(k.Precomputed.Dp, big.NewInt(2))
	s, err := o.Signer(&k)
	if err == nil {
		t.Fatalf("Signer took a key that signs wrongly: %T", s)
	}
	if !errors.Is(err, ErrNoOpenSSL) {
		t.Errorf("error %v is not ErrNoOpenSSL", err)
	}
}

// Nothing of the private key is printable from the signer: it holds none.
func TestOpenSSLSignerHoldsNoKey(t *testing.T) {
	o := loadOpenSSL(t)
	k := readRSA(t, "rsa1024.pem")
	s, err := o.Signer(k)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v", s, s, s)
	for _, secret := range []*big.Int{k.D, k.Primes[0], k.Primes[1]} {
		if strings.Contains(out, secret.String()) || strings.Contains(out, secret.Text(16)) {
			t.Fatal("printing the signer shows private key numbers")
		}
	}
}

func BenchmarkRSASign2048(b *testing.B) {
	k := readRSA(b, "rsa2048.pem")
	k.Precompute()
	digest := sha256.Sum256([]byte("benchmark"))
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Sign(nil, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openssl", func(b *testing.B) {
		s, err := loadOpenSSL(b).Signer(k)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Sign(nil, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
}
