//go:build !cgo

package pkcs11_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/keys/pkcs11"
)

// Built without cgo, asking for a token says why there is none.
func TestUnavailableWithoutCgo(t *testing.T) {
	cfg := pkcs11.Config{Module: "/usr/lib/softhsm/libsofthsm2.so", Token: "t", PIN: "1234"}
	for name, open := range map[string]func(pkcs11.Config) (*pkcs11.Token, error){"New": pkcs11.New, "Open": pkcs11.Open} {
		tok, err := open(cfg)
		if tok != nil || !errors.Is(err, pkcs11.ErrUnavailable) || !strings.Contains(err.Error(), "without cgo") {
			t.Errorf("%s: %v, %v; want ErrUnavailable saying dkimd was built without cgo", name, tok, err)
		}
	}
}
