package keys

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/dkimd/dkimd/internal/datadir"
)

// MasterKeySize is the length in bytes of a master key: AES-256.
const MasterKeySize = 32

// MasterKeyEnv is the environment variable MasterKeyFromEnv reads by
// convention: the master key as standard base64, the same text a master key
// file holds.
const MasterKeyEnv = "DKIMD_MASTER_KEY"

// sealVersion is the first byte of every sealed blob. A new format (another
// cipher, a key identifier for rotation) gets a new version so old blobs
// keep opening.
const sealVersion byte = 1

// maxMasterKeyFile bounds what LoadMasterKeyFile reads: a master key file is
// 44 bytes of base64 and a newline, anything much larger is not one.
const maxMasterKeyFile = 1024

// Errors about master keys and sealed data, one per failure class. None of
// them, nor anything wrapping them here, contains key material.
var (
	// ErrMasterKey means a master key could not be used: wrong length, not
	// base64, or a file that others may read.
	ErrMasterKey = errors.New("keys: unusable master key")
	// ErrNoMasterKey means no master key was given where one was looked for.
	ErrNoMasterKey = errors.New("keys: no master key")
	// ErrSealed means sealed data did not open: it was sealed under another
	// master key, for another row, or it was damaged.
	ErrSealed = errors.New("keys: sealed data does not open (wrong master key, wrong row, or damaged)")
)

// MasterKey is the AES-256 key that seals private keys at rest. It is kept
// outside the database. Its value never prints: fmt, encoding/json and
// log/slog all see "[master key]".
type MasterKey struct {
	aead  cipher.AEAD
	check [checkSize]byte // CheckValue
}

const redacted = "[master key]"

// NewMasterKey makes a master key from random bytes. A nil random means
// crypto/rand.
func NewMasterKey(random io.Reader) (*MasterKey, error) {
	if random == nil {
		random = rand.Reader
	}
	var raw [MasterKeySize]byte
	if _, err := io.ReadFull(random, raw[:]); err != nil {
		return nil, fmt.Errorf("keys: make master key: %w", err)
	}
	defer clear(raw[:])
	return newMasterKey(raw[:])
}

func newMasterKey(raw []byte) (*MasterKey, error) {
	if len(raw) != MasterKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrMasterKey, len(raw), MasterKeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMasterKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMasterKey, err)
	}
	return &MasterKey{aead: aead, check: checkValue(raw)}, nil
}

// ParseMasterKey reads a master key written as standard base64 (44
// characters for 32 bytes), as a master key file or MasterKeyEnv holds it.
// Surrounding white space is ignored. Errors never quote the input.
func ParseMasterKey(text []byte) (*MasterKey, error) {
	text = bytes.TrimSpace(text)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	defer clear(raw)
	n, err := base64.StdEncoding.Decode(raw, text)
	if err != nil {
		// The error from encoding/base64 names only an offset, but say
		// nothing of the input at all to be sure.
		return nil, fmt.Errorf("%w: not standard base64", ErrMasterKey)
	}
	return newMasterKey(raw[:n])
}

// encodeMasterKey gives raw key bytes as base64 followed by a newline, the
// content of a master key file.
func encodeMasterKey(raw []byte) []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw))+1)
	base64.StdEncoding.Encode(out, raw)
	out[len(out)-1] = '\n'
	return out
}

// MasterKeyFromEnv reads a master key from the environment variable name
// (MasterKeyEnv by convention). It returns an error wrapping ErrNoMasterKey
// when the variable is unset or empty.
func MasterKeyFromEnv(name string) (*MasterKey, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: $%s is not set", ErrNoMasterKey, name)
	}
	m, err := ParseMasterKey([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", name, err)
	}
	return m, nil
}

// LoadMasterKeyFile reads a master key file. It refuses a file that is not
// a regular file, that the group or others may read or write, or that does
// not hold exactly one base64 master key. A missing file gives an error
// wrapping fs.ErrNotExist.
func LoadMasterKeyFile(path string) (*MasterKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: master key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: master key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrMasterKey, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, which lets the group or others read or change it; run chmod 600 %s",
			ErrMasterKey, path, perm, path)
	}
	if fi.Size() > maxMasterKeyFile {
		return nil, fmt.Errorf("%w: %s is %d bytes, a master key file is %d bytes of base64",
			ErrMasterKey, path, fi.Size(), base64.StdEncoding.EncodedLen(MasterKeySize)+1)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxMasterKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys: master key: read %s: %w", path, err)
	}
	defer clear(data)
	m, err := ParseMasterKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// LoadOrCreateMasterKey reads the master key file at path, or, when there is
// none, creates one with a new random key and mode 0600. created tells which
// happened, so that the caller can remind the administrator to back the key
// up: without it no sealed private key can be opened.
//
// Creation is crash- and race-safe: the key is written to a temporary file in
// the same directory, synced, and linked into place, which fails if another
// process got there first (then that process's key is read). A crash leaves
// either no key file or a whole one, never a short one.
func LoadOrCreateMasterKey(path string) (m *MasterKey, created bool, err error) {
	m, err = LoadMasterKeyFile(path)
	if err == nil {
		return m, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	var raw [MasterKeySize]byte
	defer clear(raw[:])
	if _, err := io.ReadFull(rand.Reader, raw[:]); err != nil {
		return nil, false, fmt.Errorf("keys: make master key: %w", err)
	}
	m, err = newMasterKey(raw[:])
	if err != nil {
		return nil, false, err
	}
	text := encodeMasterKey(raw[:])
	defer clear(text)
	if err := datadir.CreateFileAtomic(path, text, 0o600); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Another process created it between our read and link.
			m, err = LoadMasterKeyFile(path)
			return m, false, err
		}
		return nil, false, fmt.Errorf("keys: master key: %w", err)
	}
	return m, true, nil
}

// Seal encrypts plaintext with AES-256-GCM under the master key. The
// associated data is not stored but must be given again to Open: it binds
// the blob to the row it belongs to (store.KeyAssociatedData gives it for a
// DKIM key), so a blob copied to another row does not open.
//
// The result is a version byte, a random 96-bit nonce, and the ciphertext
// with its tag. Random nonces are safe for far more keys than dkimd will
// ever seal under one master key (NIST SP 800-38D §8.3).
func (m *MasterKey) Seal(plaintext, associatedData []byte) ([]byte, error) {
	if m == nil || m.aead == nil {
		return nil, fmt.Errorf("%w: nil master key", ErrMasterKey)
	}
	ns := m.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+m.aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("keys: seal: %w", err)
	}
	return m.aead.Seal(out, out[1:1+ns], plaintext, sealAD(out[0], associatedData)), nil
}

// Open decrypts what Seal made with the same master key and associated data.
// Any mismatch gives an error wrapping ErrSealed.
func (m *MasterKey) Open(sealed, associatedData []byte) ([]byte, error) {
	if m == nil || m.aead == nil {
		return nil, fmt.Errorf("%w: nil master key", ErrMasterKey)
	}
	ns := m.aead.NonceSize()
	if len(sealed) < 1+ns+m.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrSealed, len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrSealed, sealed[0])
	}
	nonce, ct := sealed[1:1+ns], sealed[1+ns:]
	pt, err := m.aead.Open(nil, nonce, ct, sealAD(sealed[0], associatedData))
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}

// sealAD authenticates the version byte along with the caller's data, so a
// blob cannot be relabelled as another format.
func sealAD(version byte, ad []byte) []byte {
	out := make([]byte, 0, len("dkimd-seal")+2+len(ad))
	out = append(out, "dkimd-seal"...)
	out = append(out, 0, version)
	return append(out, ad...)
}

// SealSigner seals a private key as PKCS#8 PEM; OpenSigner reverses it.
func (m *MasterKey) SealSigner(k crypto.Signer, associatedData []byte) ([]byte, error) {
	pemData, err := MarshalPEM(k)
	if err != nil {
		return nil, err
	}
	defer clear(pemData)
	return m.Seal(pemData, associatedData)
}

// OpenSigner opens a private key sealed by SealSigner.
func (m *MasterKey) OpenSigner(sealed, associatedData []byte) (crypto.Signer, error) {
	pemData, err := m.Open(sealed, associatedData)
	if err != nil {
		return nil, err
	}
	defer clear(pemData)
	return ParsePEM(pemData)
}

// The redacting methods have value receivers so that a MasterKey value, not
// only a pointer, is covered too: without them fmt would print the cipher's
// expanded key schedule.

// String hides the key.
func (MasterKey) String() string { return redacted }

// GoString hides the key from %#v.
func (MasterKey) GoString() string { return redacted }

// Format hides the key from every fmt verb, %x and %+v included.
func (MasterKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON hides the key from encoding/json.
func (MasterKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText hides the key from encoders that use encoding.TextMarshaler.
func (MasterKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue hides the key from log/slog.
func (MasterKey) LogValue() slog.Value { return slog.StringValue(redacted) }
