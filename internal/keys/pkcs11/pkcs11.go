package pkcs11

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
)

// Errors returned by this package, one per failure class.
var (
	// ErrUnavailable means this dkimd was built without cgo, so without
	// PKCS#11 support.
	ErrUnavailable = errors.New("pkcs11: not available: dkimd was built without cgo (rebuild with CGO_ENABLED=1 for PKCS#11 keys)")
	// ErrConfig means the configuration is incomplete or wrong.
	ErrConfig = errors.New("pkcs11: bad configuration")
	// ErrLogin means the token refused the PIN (wrong, locked or expired).
	// It is not retried: more wrong PINs would lock the token.
	ErrLogin = errors.New("pkcs11: login to token failed")
	// ErrToken means the token or its module cannot be reached or failed:
	// module not loadable, token absent or removed, a device error.
	ErrToken = errors.New("pkcs11: token unavailable")
	// ErrKeyNotFound means the token holds no key of that label and ID.
	ErrKeyNotFound = errors.New("pkcs11: key not found in token")
	// ErrUnsupported means a key kind or signature option the token
	// signer does not offer.
	ErrUnsupported = errors.New("pkcs11: unsupported")
)

// DefaultMaxSessions is the session pool size when Config gives none: room
// for that many signatures at once.
const DefaultMaxSessions = 32

// DefaultRetryInterval is how long a token that failed is left alone before
// dkimd tries to reach it again.
const DefaultRetryInterval = 10 * time.Second

// Config says which token to use and how.
type Config struct {
	// Module is the path of the PKCS#11 library, such as
	// /usr/lib/softhsm/libsofthsm2.so. Required.
	Module string
	// Token is the token's label. Required.
	Token string
	// PIN is the user PIN. It is never logged nor put in an error.
	PIN string
	// MaxSessions bounds the sessions open at once, and so the signatures
	// made at once; zero means DefaultMaxSessions.
	MaxSessions int
	// RetryInterval is how long after a failure the token is tried again;
	// zero means DefaultRetryInterval. A refused PIN is never retried.
	RetryInterval time.Duration
}

// Validate checks that the required fields are there.
func (c Config) Validate() error {
	var missing []string
	if c.Module == "" {
		missing = append(missing, "module path")
	}
	if c.Token == "" {
		missing = append(missing, "token label")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no %s", ErrConfig, strings.Join(missing, " nor "))
	}
	if c.MaxSessions < 0 {
		return fmt.Errorf("%w: %d sessions", ErrConfig, c.MaxSessions)
	}
	return nil
}

func (c Config) maxSessions() int {
	if c.MaxSessions == 0 {
		return DefaultMaxSessions
	}
	return c.MaxSessions
}

func (c Config) retryInterval() time.Duration {
	if c.RetryInterval <= 0 {
		return DefaultRetryInterval
	}
	return c.RetryInterval
}

// Object names a key pair in a token (keys.TokenObject, so that the key
// source and the lifecycle name objects without importing this package).
type Object = keys.TokenObject

// ObjectLabel gives the label dkimd puts on a key pair it generates: the
// name of the key's DNS record, which names domain and selector
// (keys.TokenObjectLabel).
func ObjectLabel(domain, selector string) string { return keys.TokenObjectLabel(domain, selector) }

// A Token is what the key source signs with.
var _ keys.Token = (*Token)(nil)
