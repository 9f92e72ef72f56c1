//go:build cgo

package pkcs11test

import (
	"testing"

	p11 "github.com/miekg/pkcs11"
)

func finalize(t testing.TB) {
	p := p11.New(Module)
	if p == nil {
		t.Fatalf("pkcs11test: cannot load %s", Module)
	}
	defer p.Destroy()
	if err := p.Finalize(); err != nil {
		t.Fatalf("pkcs11test: C_Finalize: %v", err)
	}
}
