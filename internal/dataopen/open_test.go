package dataopen

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/keys"
)

// TestOpenGate: a first start makes the master key and says so; the same
// key opens the directory again; a foreign key, and a key beside a
// missing database, are refused with their own sentinel and change
// nothing; a --database that is no PostgreSQL URL is refused before
// anything is opened.
func TestOpenGate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	var notice bytes.Buffer
	d, err := Open(ctx, Options{Dir: dir, Notice: &notice})
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	d.Close()
	if !strings.Contains(notice.String(), "created master key "+filepath.Join(dir, "master.key")) {
		t.Errorf("first start told %q, want the created master key named", notice.String())
	}
	d, err = Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatalf("own key: %v", err)
	}
	d.Close()

	foreign := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := keys.LoadOrCreateMasterKey(foreign); err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if _, err := Open(ctx, Options{Dir: dir, MasterKeyFile: foreign}); !errors.Is(err, ErrMasterKeyForeign) || !errors.As(err, &re) {
		t.Errorf("foreign key: %v, want ErrMasterKeyForeign in a *RefusedError", err)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, err := Open(ctx, Options{Dir: fresh, MasterKeyFile: foreign}); !errors.Is(err, ErrDatabaseNew) {
		t.Errorf("key beside no database: %v, want ErrDatabaseNew", err)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused open made the data directory: %v", err)
	}
	if _, err := Open(ctx, Options{Dir: fresh, Database: "mysql://x"}); !errors.Is(err, ErrNotPostgres) {
		t.Errorf("mysql URL: %v, want ErrNotPostgres", err)
	}
}
