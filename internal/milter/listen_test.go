package milter_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/milter"
)

func TestListen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sock := filepath.Join(dir, "m.sock")
	ln, err := milter.Listen(ctx, "unix:"+sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v; want 0600", st.Mode(), err)
	}
	ln.Close()
	// A socket left behind by a crash is replaced.
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln2, err := milter.Listen(ctx, "local:"+sock, 0)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	if st, _ := os.Stat(sock); st.Mode().Perm() != 0o660 {
		t.Errorf("default socket mode %v, want 0660", st.Mode().Perm())
	}
	ln2.Close()
	for _, addr := range []string{"inet:127.0.0.1:0", "inet:0@127.0.0.1"} {
		ln, err := milter.Listen(ctx, addr, 0)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if !strings.HasPrefix(ln.Addr().String(), "127.0.0.1:") {
			t.Errorf("%s listens on %s", addr, ln.Addr())
		}
		ln.Close()
	}
	for _, tc := range []struct{ addr, want string }{
		{"unix:" + filepath.Join(dir, "x"), "not a socket"},
		{"127.0.0.1:8891", "unknown kind"},
		{"inet:", "want unix:/path or inet:HOST:PORT"},
		{"tcp:127.0.0.1:1", "unknown kind"},
	} {
		if _, err := milter.Listen(ctx, tc.addr, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%q) = %v, want an error with %q", tc.addr, err, tc.want)
		}
	}
	if _, err := milter.ParseOnError("sometimes"); err == nil {
		t.Error("ParseOnError accepted a bad value")
	}
}
