//go:build !cgo

package pkcs11test

import "testing"

func finalize(t testing.TB) { t.Skip("pkcs11test: no PKCS#11 without cgo") }
