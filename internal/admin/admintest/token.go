package admintest

import (
	"crypto"
	"fmt"
	"sync"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
)

// FakeToken stands in for a PKCS#11 token (Token) with keys in memory, for
// tests that need no SoftHSM; SetDown makes it fail as an unreachable token
// does. The zero value is ready.
type FakeToken struct {
	mu   sync.Mutex
	keys map[pkcs11.Object]crypto.Signer
	down bool
	n    int
}

func (f *FakeToken) Label() string { return "test-hsm" }

func (f *FakeToken) Generate(spec keys.Spec, label string) (pkcs11.Object, crypto.PublicKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return pkcs11.Object{}, nil, fmt.Errorf("%w: token %q: module gone", pkcs11.ErrToken, f.Label())
	}
	sg, err := keys.Generate(nil, spec)
	if err != nil {
		return pkcs11.Object{}, nil, err
	}
	f.n++
	o := pkcs11.Object{Label: label, ID: fmt.Sprintf("%04x", f.n)}
	if f.keys == nil {
		f.keys = map[pkcs11.Object]crypto.Signer{}
	}
	f.keys[o] = sg
	return o, sg.Public(), nil
}

func (f *FakeToken) Signer(_ keys.Algorithm, o pkcs11.Object) (crypto.Signer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sg := f.keys[o]; sg != nil {
		return sg, nil
	}
	return nil, pkcs11.ErrKeyNotFound
}

func (f *FakeToken) Destroy(_ keys.Algorithm, o pkcs11.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, o)
	return nil
}

// SetDown makes the token fail (true) or work again (false).
func (f *FakeToken) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

var _ Token = (*FakeToken)(nil)
