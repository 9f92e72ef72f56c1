package keys_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
)

// memToken is a token with its key pairs in memory.
type memToken struct {
	label string
	keys  map[keys.TokenObject]crypto.Signer
	opens int
}

func (m *memToken) Label() string { return m.label }

func (m *memToken) Signer(_ keys.Algorithm, o keys.TokenObject) (crypto.Signer, error) {
	m.opens++
	if sg := m.keys[o]; sg != nil {
		return sg, nil
	}
	return nil, errors.New("memtoken: no such object")
}

// noSealed holds no sealed key: token keys need none.
type noSealed struct{}

func (noSealed) SealedKey(context.Context, int64) ([]byte, error) {
	return nil, errors.New("no sealed key here")
}

// A key in a token is opened through the token, once, and only if the
// token configured is the one the key names and its object holds the
// public key stored: a token object swapped by hand must not sign as the
// published key.
func TestSourceTokenKeys(t *testing.T) {
	ctx := context.Background()
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := keys.Generate(nil, keys.Spec{Algorithm: keys.Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.Generate(nil, keys.Spec{Algorithm: keys.Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := keys.Generate(nil, keys.Spec{Algorithm: keys.RSA, Bits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	goodObj := keys.TokenObject{Label: keys.TokenObjectLabel("example.com", "h1"), ID: "01"}
	swapped := keys.TokenObject{Label: keys.TokenObjectLabel("example.com", "h2"), ID: "02"}
	rsaObj := keys.TokenObject{Label: keys.TokenObjectLabel("example.com", "r1"), ID: "03"}
	tok := &memToken{label: "bank-hsm", keys: map[keys.TokenObject]crypto.Signer{goodObj: good, swapped: other, rsaObj: rsaKey}}
	src, err := keys.NewSource(keys.SourceOptions{Sealed: noSealed{}, Master: mk, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(id int64, token string, o keys.TokenObject, alg keys.Algorithm, pub []byte) keys.Ref {
		return keys.Ref{ID: id, Token: keys.TokenKey{Token: token, Object: o, Algorithm: alg, PublicKey: pub}}
	}
	goodPub := []byte(good.Public().(ed25519.PublicKey))

	for _, r := range []keys.Ref{ref(1, "bank-hsm", goodObj, keys.Ed25519, goodPub), ref(4, "bank-hsm", rsaObj, keys.RSA, rsaPub)} {
		for range 2 {
			if _, err := src.Signer(ctx, r); err != nil {
				t.Fatalf("key %d: %v", r.ID, err)
			}
		}
	}
	if tok.opens != 2 {
		t.Errorf("token asked %d times for 2 keys, want once each", tok.opens)
	}
	src.Drop(1)
	if _, err := src.Signer(ctx, ref(1, "bank-hsm", goodObj, keys.Ed25519, goodPub)); err != nil || tok.opens != 3 {
		t.Errorf("after Drop: %v, %d opens, want the key opened again", err, tok.opens)
	}

	for _, tc := range []struct {
		name string
		src  *keys.Source
		ref  keys.Ref
		want string
	}{
		{"object holds another key", src, ref(2, "bank-hsm", swapped, keys.Ed25519, goodPub), "holds another key"},
		{"another token", src, ref(3, "other-hsm", goodObj, keys.Ed25519, goodPub), `token configured is "bank-hsm"`},
		{"no token configured", mustSource(t, keys.SourceOptions{Sealed: noSealed{}, Master: mk}), ref(1, "bank-hsm", goodObj, keys.Ed25519, goodPub), "no token is configured"},
	} {
		if _, err := tc.src.Signer(ctx, tc.ref); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func mustSource(t *testing.T, o keys.SourceOptions) *keys.Source {
	t.Helper()
	s, err := keys.NewSource(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
