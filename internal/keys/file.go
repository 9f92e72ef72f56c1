package keys

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrExists is returned when asked to write a key over an existing file.
var ErrExists = errors.New("keys: file already exists")

// WriteFile stores a private key as PKCS#8 PEM at path with mode 0600. It
// never replaces an existing file, and a crash leaves either no file or the
// whole key: the key is written to a temporary file in the same directory,
// synced, and then linked into place (link fails if path exists).
func WriteFile(path string, k crypto.Signer) error {
	data, err := MarshalPEM(k)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".dkimd-key-*")
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keys: close %s: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		return fmt.Errorf("keys: %w", err)
	}
	return syncDir(dir)
}

// ReadFile loads a private key written by WriteFile, opendkim-genkey or
// openssl. Errors name the file but never quote its content.
func ReadFile(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	k, err := ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	return nil
}
