package dnscheck

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"math/big"
	"testing"
)

// TestSameKey compares keys by value, never by text (RSA: modulus and
// exponent; Ed25519: the 32 bytes).
func TestSameKey(t *testing.T) {
	k := loadKeys(t)
	otherE := &rsa.PublicKey{N: new(big.Int).Set(k.rsa.N), E: 3}
	copyN := &rsa.PublicKey{N: new(big.Int).Set(k.rsa.N), E: k.rsa.E}
	edCopy := append(ed25519.PublicKey(nil), k.ed...)
	edOther := append(ed25519.PublicKey(nil), k.ed...)
	edOther[31] ^= 1
	for _, tc := range []struct {
		name string
		a, b crypto.PublicKey
		want bool
	}{
		{"same RSA key, another copy", k.rsa, copyN, true},
		{"RSA exponent differs", k.rsa, otherE, false},
		{"RSA modulus differs", k.rsa, k.other, false},
		{"same Ed25519 key, another copy", k.ed, edCopy, true},
		{"Ed25519 last bit differs", k.ed, edOther, false},
		{"RSA against Ed25519", k.rsa, k.ed, false},
		{"nil", nil, k.ed, false},
	} {
		if got := sameKey(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: sameKey = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPublicKeyOption accepts the forms a caller may hold a key in.
func TestPublicKeyOption(t *testing.T) {
	k := loadKeys(t)
	for _, tc := range []struct {
		name string
		in   crypto.PublicKey
		ok   bool
	}{
		{"*rsa.PublicKey", k.rsa, true},
		{"rsa.PublicKey value", *k.rsa, true},
		{"ed25519.PublicKey", k.ed, true},
		{"*ed25519.PublicKey", &k.ed, true},
		{"a private key", ed25519.NewKeyFromSeed(make([]byte, 32)), true},
		{"short Ed25519", k.ed[:31], false},
		{"nil *rsa.PublicKey", (*rsa.PublicKey)(nil), false},
		{"a string", "p=MIIB", false},
	} {
		_, err := publicKey(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestUnescape reads miekg/dns's presentation form of a character-string
// (RFC 1035 §5.1) back into bytes.
func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:        "plain",
		`\"quoted\"`:   `"quoted"`,
		`back\\slash`:  `back\slash`,
		`\194\160nbsp`: "\u00a0nbsp",
		`\000`:         "\x00",
		`trailing\`:    `trailing\`,
		`\;`:           ";",
		`\12x`:         "12x",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
