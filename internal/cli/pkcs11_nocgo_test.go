//go:build !cgo

package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// Built without cgo, naming a PKCS#11 module says that this dkimd has no
// PKCS#11 support, instead of failing later or ignoring it.
func TestPKCS11WithoutCgo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, _, errs := runData(t, dir, "", "key", "list", "--pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "--pkcs11-token", "t")
	if code != 1 || !strings.Contains(errs, "built without cgo") {
		t.Fatalf("exit %d %q, want 1 and a message saying dkimd was built without cgo", code, errs)
	}
}
