package datadir_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dkimd/dkimd/internal/datadir"
)

// The names are an on-disk format: an upgrade must find the files an
// older dkimd wrote, so they are spelled out here once more.
func TestLayoutPaths(t *testing.T) {
	l := datadir.New("/var/lib/dkimd")
	for _, c := range []struct{ what, got, want string }{
		{"database", l.Database(), "/var/lib/dkimd/dkimd.db"},
		{"master key", l.MasterKey(), "/var/lib/dkimd/master.key"},
		{"spool", l.Spool(), "/var/lib/dkimd/spool"},
		{"relay temporary files", l.Tmp(), "/var/lib/dkimd/tmp"},
		{"control socket", l.ControlSocket(), "/var/lib/dkimd/control.sock"},
		{"relay certificate", l.RelayCert(), "/var/lib/dkimd/relay-cert.pem"},
		{"relay certificate key", l.RelayKey(), "/var/lib/dkimd/relay-key.pem"},
		{"root, in messages", l.String(), "/var/lib/dkimd"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.what, c.got, c.want)
		}
	}
	// The relay's temporary files are not in the spool's own tmp/, which
	// the queue empties when it opens.
	if rel, err := filepath.Rel(l.Spool(), l.Tmp()); err == nil && filepath.IsLocal(rel) {
		t.Errorf("Tmp %s is inside the spool %s", l.Tmp(), l.Spool())
	}
}

// CleanTmp makes the directory on a first start and removes what a
// killed process left (files and directories), touching nothing else in
// the data directory.
func TestCleanTmp(t *testing.T) {
	l := datadir.New(filepath.Join(t.TempDir(), "data"))
	if err := l.MakeRoot(); err != nil {
		t.Fatal(err)
	}
	dir, err := l.CleanTmp()
	if err != nil || dir != l.Tmp() {
		t.Fatalf("CleanTmp on a new data directory: %q, %v", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("tmp: %v %v, want a directory with mode 0700", fi, err)
	}
	for _, p := range []string{filepath.Join(dir, "relay-1.eml"), filepath.Join(dir, "sub", "x"), l.Database(), filepath.Join(l.Spool(), "tmp", "y.msg")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("left"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.CleanTmp(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("tmp after CleanTmp holds %d entries, want none", len(left))
	}
	for _, p := range []string{l.Database(), filepath.Join(l.Spool(), "tmp", "y.msg")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("CleanTmp touched %s: %v", p, err)
		}
	}
}
