package keys

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Algorithm names a DKIM key type as it appears in the k= tag of a key record.
type Algorithm string

// The key types dkimd generates (RFC 6376 §3.3.1, RFC 8463).
const (
	RSA     Algorithm = "rsa"
	Ed25519 Algorithm = "ed25519"
)

// DefaultRSABits is the RSA modulus length used when a Spec names none.
const DefaultRSABits = 2048

// Errors returned by this package, one per failure class.
var (
	ErrUnknownAlgorithm = errors.New("keys: unknown algorithm")
	ErrBadBits          = errors.New("keys: unsupported key length")
	ErrBadKey           = errors.New("keys: not a usable private key")
)

// Spec says what kind of key to generate. The zero value is RSA 2048.
type Spec struct {
	// Algorithm is RSA or Ed25519; empty means RSA.
	Algorithm Algorithm
	// Bits is the RSA modulus length: 1024, 2048, 3072 or 4096; zero means
	// 2048. It must be zero (or 256) for Ed25519.
	Bits int
}

// ParseAlgorithm accepts "rsa" and "ed25519" in any case.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "rsa":
		return RSA, nil
	case "ed25519":
		return Ed25519, nil
	}
	return "", unknownAlgorithm(s)
}

// Normalize fills in defaults and checks the combination.
func (s Spec) Normalize() (Spec, error) {
	if s.Algorithm == "" {
		s.Algorithm = RSA
	}
	switch s.Algorithm {
	case RSA:
		if s.Bits == 0 {
			s.Bits = DefaultRSABits
		}
		switch s.Bits {
		case 1024, 2048, 3072, 4096:
		default:
			return s, &inputError{class: ErrBadBits, log: fmt.Sprintf(": RSA %d bits (want 1024, 2048, 3072 or 4096)", s.Bits),
				message: fmt.Sprintf("An RSA key is 1024, 2048, 3072 or 4096 bits long, not %d.", s.Bits)}
		}
	case Ed25519:
		if s.Bits != 0 && s.Bits != 256 {
			return s, &inputError{class: ErrBadBits, log: ": Ed25519 keys have a fixed length (do not give bits)",
				message: "Ed25519 keys have a fixed length: do not give bits."}
		}
		s.Bits = 256
	default:
		return s, unknownAlgorithm(string(s.Algorithm))
	}
	return s, nil
}

// String gives "rsa-2048" or "ed25519".
func (s Spec) String() string {
	if s.Algorithm == Ed25519 {
		return "ed25519"
	}
	return fmt.Sprintf("%s-%d", s.Algorithm, s.Bits)
}

// Warnings lists what an administrator should know before publishing a key of
// this kind. An empty list means nothing to warn about.
func (s Spec) Warnings() []string {
	switch {
	case s.Algorithm == RSA && s.Bits == 1024:
		return []string{"RSA 1024 is the minimum receivers accept (RFC 8301) and is considered weak; prefer 2048"}
	case s.Algorithm == RSA && s.Bits > 2048:
		return []string{fmt.Sprintf("an RSA %d record is longer than 255 characters and some DNS providers reject or truncate long TXT records; check it after publishing", s.Bits)}
	case s.Algorithm == Ed25519:
		return []string{"some receivers do not verify Ed25519 yet (RFC 8463): use it as a second signature beside an RSA key"}
	}
	return nil
}

// Generate makes a new private key. A nil rand means crypto/rand.
func Generate(random io.Reader, spec Spec) (crypto.Signer, error) {
	spec, err := spec.Normalize()
	if err != nil {
		return nil, err
	}
	if random == nil {
		random = rand.Reader
	}
	switch spec.Algorithm {
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(random)
		if err != nil {
			return nil, fmt.Errorf("keys: generate ed25519: %w", err)
		}
		return priv, nil
	default:
		priv, err := rsa.GenerateKey(random, spec.Bits)
		if err != nil {
			return nil, fmt.Errorf("keys: generate rsa: %w", err)
		}
		return priv, nil
	}
}

// SpecOf tells the algorithm and length of a key.
func SpecOf(k crypto.Signer) (Spec, error) {
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		return Spec{Algorithm: RSA, Bits: pub.N.BitLen()}, nil
	case ed25519.PublicKey:
		return Spec{Algorithm: Ed25519, Bits: 256}, nil
	}
	return Spec{}, fmt.Errorf("%w: %T", ErrBadKey, k.Public())
}

// MarshalPEM encodes a private key as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePEM reads an RSA or Ed25519 private key from PEM: PKCS#8
// ("PRIVATE KEY"), or PKCS#1 ("RSA PRIVATE KEY") as opendkim-genkey writes.
// Errors never quote the input.
func ParsePEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrBadKey)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block is %q, want PRIVATE KEY", ErrBadKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: malformed %s block", ErrBadKey, block.Type)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("%w: RSA key of %d bits is below the 1024-bit minimum (RFC 8301)", ErrBadKey, k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%w: %T keys cannot sign DKIM", ErrBadKey, key)
}

// inputError refuses a value someone gave: Error gives the class and what
// was wrong, for the log; UserMessage a sentence for people, which the
// HTTP and CLI boundaries find by that method (see store.Detail: this
// package may not import the store).
type inputError struct {
	class error
	// log follows the class in Error: ": RSA 512 bits (…)".
	log     string
	message string
}

func (e *inputError) Error() string       { return e.class.Error() + e.log }
func (e *inputError) Unwrap() error       { return e.class }
func (e *inputError) UserMessage() string { return e.message }

func unknownAlgorithm(s string) error {
	return &inputError{class: ErrUnknownAlgorithm, log: fmt.Sprintf(" %q (want rsa or ed25519)", s),
		message: fmt.Sprintf("Unknown key algorithm %q: use rsa or ed25519.", s)}
}
