package keys

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"sync"
)

// Ref names one stored private key: what a Source needs to open it. The
// store gives it (store.Key.Ref).
type Ref struct {
	// ID is the key's row; an ID always names the same private key, so a
	// signer opened once can be kept by ID.
	ID int64
	// AssociatedData is what the sealed key is bound to (its domain and
	// selector), so a sealed key copied to another row does not open.
	AssociatedData []byte
	// Token says where a key that lives in a PKCS#11 token is; the zero
	// value (empty Token.Token) means the key is sealed in the store.
	Token TokenKey
}

// InToken reports whether the key lives in a PKCS#11 token.
func (r Ref) InToken() bool { return r.Token.Token != "" }

// SealedKeys gives sealed private keys by key ID; the store is one.
type SealedKeys interface {
	SealedKey(ctx context.Context, id int64) ([]byte, error)
}

// SourceOptions configure a Source. Sealed and Master are required; the
// zero value of every other field is documented beside it.
type SourceOptions struct {
	Sealed SealedKeys
	Master *MasterKey
	// OpenSSL, when set, makes RSA signatures through the system's
	// libcrypto (LoadOpenSSL); nil signs with Go's crypto/rsa.
	OpenSSL *OpenSSL
	// Token is the PKCS#11 token keys may live in; nil means none is
	// configured, so a key in a token fails to open.
	Token Token
	// Log receives a warning when OpenSSL cannot take a key; nil discards.
	Log *slog.Logger
}

// maxCachedSigners bounds the opened keys a Source keeps in memory.
const maxCachedSigners = 4096

// Source turns stored keys into ready signers for the relay and the milter:
// it reads the sealed key, opens it with the master key, hands RSA keys to
// OpenSSL when it is loaded, and keeps the result by key ID, so a busy
// relay does not read, decrypt and parse a key for every message. The key
// never leaves the process, or, for a key in a PKCS#11 token, the token
// (which then makes every signature). Whether a key may still sign is the caller's
// check against the key row; the lifecycle drops a key here once it stops
// signing (Drop). A Source is safe for concurrent use.
type Source struct {
	o   SourceOptions
	log *slog.Logger

	mu sync.Mutex
	m  map[int64]crypto.Signer
}

// NewSource makes a Source.
func NewSource(o SourceOptions) (*Source, error) {
	if o.Sealed == nil || o.Master == nil {
		return nil, errors.New("keys: a key source needs the sealed keys and the master key")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{o: o, log: log}, nil
}

// Signer gives the ready signer for the key r names.
func (s *Source) Signer(ctx context.Context, r Ref) (crypto.Signer, error) {
	if sg := s.get(r.ID); sg != nil {
		return sg, nil
	}
	if r.InToken() {
		sg, err := s.tokenSigner(r)
		if err != nil {
			return nil, err
		}
		s.put(r.ID, sg)
		return sg, nil
	}
	sealed, err := s.o.Sealed.SealedKey(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	sg, err := s.o.Master.OpenSigner(sealed, r.AssociatedData)
	if err != nil {
		return nil, err
	}
	if fast, err := s.o.OpenSSL.Signer(sg); err != nil {
		// Slower, not broken: Go's crypto/rsa signs the same bytes.
		s.log.Warn("openssl_signer_unavailable", "key_id", r.ID, "err", err)
	} else {
		sg = fast
	}
	s.put(r.ID, sg)
	return sg, nil
}

// Drop forgets the opened key id, if it is held: it signs no more, so it
// should not stay in memory.
func (s *Source) Drop(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *Source) get(id int64) crypto.Signer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

func (s *Source) put(id int64, sg crypto.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxCachedSigners {
		s.m = make(map[int64]crypto.Signer) // rare: start over rather than track use
	}
	s.m[id] = sg
}
