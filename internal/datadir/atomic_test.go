package datadir_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dkimd/dkimd/internal/datadir"
)

// onlyFiles fails unless dir holds exactly the names given: no temporary
// file is left behind.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func checkFile(t *testing.T, path, content string, perm fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != perm {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), perm)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != content {
		t.Errorf("%s: %q %v, want %q", path, b, err, content)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "relay-cert.pem")
	if err := datadir.WriteFileAtomic(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "one", 0o600)
	// It replaces, with the new mode (umask does not narrow it).
	if err := datadir.WriteFileAtomic(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "two", 0o644)
	onlyFiles(t, dir, "relay-cert.pem")

	// A directory that does not exist is an error, not a panic.
	if err := datadir.WriteFileAtomic(filepath.Join(dir, "no", "f"), []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("in a missing directory: %v, want fs.ErrNotExist", err)
	}
}

// CreateFileAtomic never replaces: an existing file, even a dangling
// symbolic link, is refused with fs.ErrExist and left as it is (the master
// key must never be overwritten).
func TestCreateFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "master.key")
	if err := datadir.CreateFileAtomic(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "first", 0o600)
	if err := datadir.CreateFileAtomic(p, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("over an existing file: %v, want fs.ErrExist", err)
	}
	checkFile(t, p, "first", 0o600)

	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	if err := datadir.CreateFileAtomic(link, []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("over a dangling link: %v, want fs.ErrExist", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
	onlyFiles(t, dir, "dangling", "master.key")
}

// Of processes racing to create the same file, exactly one succeeds and
// the file holds its content whole; the others get fs.ErrExist.
func TestCreateFileAtomicRace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "master.key")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = datadir.CreateFileAtomic(p, []byte(fmt.Sprintf("writer %d", i)), 0o600)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the file", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want fs.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the file")
	}
	checkFile(t, p, fmt.Sprintf("writer %d", winner), 0o600)
	onlyFiles(t, dir, "master.key")
}
