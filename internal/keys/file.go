package keys

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/dkimd/dkimd/internal/datadir"
)

// ErrExists is returned when asked to write a key over an existing file.
var ErrExists = errors.New("keys: file already exists")

// WriteFile stores a private key as PKCS#8 PEM at path with mode 0600. It
// never replaces an existing file (ErrExists), and a crash leaves either no
// file or the whole key (datadir.CreateFileAtomic).
func WriteFile(path string, k crypto.Signer) error {
	data, err := MarshalPEM(k)
	if err != nil {
		return err
	}
	if err := datadir.CreateFileAtomic(path, data, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		return fmt.Errorf("keys: %w", err)
	}
	return nil
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
