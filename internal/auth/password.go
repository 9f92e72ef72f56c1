package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Errors from password checking, one per failure class.
var (
	// ErrMismatch means the password is not the one the hash was made from.
	ErrMismatch = errors.New("auth: wrong password")
	// ErrBadHash means a stored hash is not an argon2id PHC string this
	// package can check, or asks for absurd resources.
	ErrBadHash = errors.New("auth: malformed password hash")
	// ErrBadPassword means a password cannot be hashed (empty or too long).
	ErrBadPassword = errors.New("auth: unusable password")
)

// Params are argon2id cost parameters (RFC 9106).
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultParams gives the OWASP password storage recommendation for
// argon2id (19 MiB, 2 passes, 1 thread): an SMTP AUTH check costs tens of
// milliseconds, which a relay can afford per connection and an attacker with
// a stolen database cannot afford per guess.
func DefaultParams() Params { return Params{Memory: 19 * 1024, Time: 2, Threads: 1} }

const (
	saltLen = 16
	keyLen  = 32
	// MaxPasswordLen bounds what is hashed, so a megabyte "password" cannot
	// be used to burn CPU.
	MaxPasswordLen = 1024
	// Bounds on parameters read back from a stored hash, so a tampered row
	// cannot make a check allocate gigabytes.
	maxMemory  = 1024 * 1024 // 1 GiB
	maxTime    = 16
	maxThreads = 16
)

const phcPrefix = "$argon2id$v=19$"

// HashPassword hashes a password with argon2id and DefaultParams, giving a
// PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	return HashPasswordParams(password, DefaultParams())
}

// HashPasswordParams is HashPassword with chosen costs (tests use small ones).
func HashPasswordParams(password string, p Params) (string, error) {
	if password == "" {
		return "", fmt.Errorf("%w: empty", ErrBadPassword)
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadPassword, MaxPasswordLen)
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > maxMemory || p.Time > maxTime || p.Threads > maxThreads {
		return "", fmt.Errorf("%w: parameters out of range", ErrBadHash)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	sum := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// CheckPassword tells whether password matches hash: nil if it does, an
// error wrapping ErrMismatch if not, ErrBadHash if the hash is unusable.
// The comparison takes constant time.
func CheckPassword(hash, password string) error {
	p, salt, sum, err := parseHash(hash)
	if err != nil {
		return err
	}
	if len(password) > MaxPasswordLen {
		return ErrMismatch
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(sum)))
	if subtle.ConstantTimeCompare(got, sum) != 1 {
		return ErrMismatch
	}
	return nil
}

// ValidHash reports whether hash is a PHC argon2id string CheckPassword
// accepts, with an error saying why not. The store uses it to refuse rows
// whose password could never be checked.
func ValidHash(hash string) error {
	_, _, _, err := parseHash(hash)
	return err
}

// NeedsRehash reports whether hash was made with other costs than p, so a
// caller that just checked the password can store a fresh hash.
func NeedsRehash(hash string, p Params) bool {
	got, _, _, err := parseHash(hash)
	return err != nil || got != p
}

func parseHash(hash string) (Params, []byte, []byte, error) {
	var p Params
	rest, ok := strings.CutPrefix(hash, phcPrefix)
	if !ok {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id v=19 PHC string", ErrBadHash)
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want parameters, salt and hash", ErrBadHash)
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[0], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, threads) != parts[0] {
		return p, nil, nil, fmt.Errorf("%w: bad parameters", ErrBadHash)
	}
	if p.Memory == 0 || p.Time == 0 || threads == 0 || p.Memory > maxMemory || p.Time > maxTime || threads > maxThreads {
		return p, nil, nil, fmt.Errorf("%w: parameters out of range", ErrBadHash)
	}
	p.Threads = uint8(threads)
	if p.Memory < 8*uint32(p.Threads) {
		return p, nil, nil, fmt.Errorf("%w: memory below 8 KiB per thread", ErrBadHash)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[1])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, fmt.Errorf("%w: bad salt", ErrBadHash)
	}
	sum, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil || len(sum) < 16 || len(sum) > 64 {
		return p, nil, nil, fmt.Errorf("%w: bad hash", ErrBadHash)
	}
	return p, salt, sum, nil
}
