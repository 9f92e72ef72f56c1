package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/mailaddr"
)

// KeyState is where a DKIM key is in its life.
type KeyState string

// The key states, in lifecycle order.
const (
	// KeyPending: generated, record not yet seen in DNS; does not sign.
	KeyPending KeyState = "pending"
	// KeyActive: signs mail.
	KeyActive KeyState = "active"
	// KeyRetired: no longer signs; its record stays published until the
	// signatures made with it have expired.
	KeyRetired KeyState = "retired"
	// KeyRevoked: its record should be published with an empty p=
	// (RFC 6376 §3.6.1) so that old signatures stop verifying.
	KeyRevoked KeyState = "revoked"
	// KeyArchived: kept for the record only; nothing is published.
	KeyArchived KeyState = "archived"
)

// KeyStates lists every state in lifecycle order.
func KeyStates() []KeyState {
	return []KeyState{KeyPending, KeyActive, KeyRetired, KeyRevoked, KeyArchived}
}

// Valid reports whether s is one of the key states.
func (s KeyState) Valid() bool { return slices.Contains(KeyStates(), s) }

// Next lists the states a key in state s may move to:
//
//	pending → active, revoked
//	active  → retired, revoked
//	retired → revoked
//	revoked → archived
//
// Nothing goes back: a retired key that should sign again is a new key.
func (s KeyState) Next() []KeyState {
	switch s {
	case KeyPending:
		return []KeyState{KeyActive, KeyRevoked}
	case KeyActive:
		return []KeyState{KeyRetired, KeyRevoked}
	case KeyRetired:
		return []KeyState{KeyRevoked}
	case KeyRevoked:
		return []KeyState{KeyArchived}
	}
	return nil
}

// CanBecome reports whether a key in state s may move to state to.
func (s KeyState) CanBecome(to KeyState) bool { return slices.Contains(s.Next(), to) }

// orList gives "active or revoked".
func orList(states []KeyState) string {
	words := make([]string, len(states))
	for i, st := range states {
		words[i] = string(st)
	}
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// CheckTransition returns nil if a key may move from one state to another,
// an error wrapping ErrInvalid if to is not a state, and one wrapping
// ErrConflict if the move is not allowed. Backends call it inside the
// transaction that changes the state.
func CheckTransition(from, to KeyState) error {
	if !to.Valid() {
		return Invalid("state", "unknown key state %q (want %s)", to, orList(KeyStates()))
	}
	if !from.CanBecome(to) {
		if next := from.Next(); len(next) > 0 {
			return Explain(ErrConflict, "A %s key cannot become %s (it can become %s).", from, to, orList(next))
		}
		return Explain(ErrConflict, "A %s key cannot change state.", from)
	}
	return nil
}

// Key is a DKIM key as stored, without its private half. The sealed private
// key is fetched apart with SealedKey, so a Key can go into JSON, logs and
// templates freely.
type Key struct {
	// ID is assigned by the store and never reused.
	ID int64 `json:"id"`
	// Domain is the d= domain, in canonical form.
	Domain string `json:"domain"`
	// Selector is the s= selector, unique within the domain for all time:
	// even an archived key keeps its selector, so DNS caches and old
	// signatures never point at the wrong key.
	Selector string `json:"selector"`
	// Algorithm and Bits say what kind of key it is.
	Algorithm keys.Algorithm `json:"algorithm"`
	Bits      int            `json:"bits"`
	// State is where the key is in its life.
	State KeyState `json:"state"`
	// PublicKey is exactly what the p= tag of the DNS record carries,
	// decoded: the DER SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1), the
	// raw 32-byte key for Ed25519 (RFC 8463 §4). JSON gives it in base64,
	// i.e. the p= value.
	PublicKey []byte `json:"public_key"`
	// Replaces is the ID of the key this one was made to replace in a
	// rotation (same domain and algorithm), zero for none. When this key
	// becomes active, the key it replaces is retired in the same
	// transaction if it is still active (see Keys.SetKeyStates).
	Replaces int64 `json:"replaces,omitempty"`
	// Location says where the private half lives: sealed in the
	// database, or inside a PKCS#11 token.
	Location KeyLocation `json:"location"`
	// Times of the lifecycle steps, set by the store; zero until reached.
	Created   time.Time `json:"created"`
	Activated time.Time `json:"activated,omitzero"`
	Retired   time.Time `json:"retired,omitzero"`
	Revoked   time.Time `json:"revoked,omitzero"`
	Archived  time.Time `json:"archived,omitzero"`
}

// KeyBackend says where a key's private half lives.
type KeyBackend string

// The key backends.
const (
	// BackendSealed: sealed under the master key, in the database.
	BackendSealed KeyBackend = "sealed"
	// BackendPKCS11: generated inside a PKCS#11 token, which makes every
	// signature; the database keeps no secret of it.
	BackendPKCS11 KeyBackend = "pkcs11"
)

// KeyLocation says where a key's private half lives. The zero value means
// sealed in the database.
type KeyLocation struct {
	// Backend is BackendSealed or BackendPKCS11; empty means sealed.
	Backend KeyBackend `json:"backend"`
	// Token is the label of the PKCS#11 token holding the key.
	Token string `json:"token,omitempty"`
	// Label and ObjectID name the key pair in the token: CKA_LABEL, and
	// CKA_ID in hexadecimal.
	Label    string `json:"label,omitempty"`
	ObjectID string `json:"object_id,omitempty"`
}

// PKCS11 reports whether the key lives in a PKCS#11 token.
func (l KeyLocation) PKCS11() bool { return l.Backend == BackendPKCS11 }

// String says where the key lives, for people.
func (l KeyLocation) String() string {
	if l.PKCS11() {
		return fmt.Sprintf("PKCS#11 token %q, object %q", l.Token, l.Label)
	}
	return "sealed in the database"
}

// Normalize checks l and fills in the default backend.
func (l KeyLocation) Normalize() (KeyLocation, error) {
	switch l.Backend {
	case "", BackendSealed:
		if l.Token != "" || l.Label != "" || l.ObjectID != "" {
			return l, Invalid("location", "a sealed key names no PKCS#11 token or object")
		}
		return KeyLocation{Backend: BackendSealed}, nil
	case BackendPKCS11:
		if l.Token == "" || l.Label == "" || l.ObjectID == "" {
			return l, Invalid("location", "a PKCS#11 key names its token, object label and object ID")
		}
		if _, err := hex.DecodeString(l.ObjectID); err != nil {
			return l, Invalid("location", "object ID %q is not hexadecimal", l.ObjectID)
		}
		return l, nil
	}
	return l, Invalid("location", "unknown key backend %q (want %s or %s)", l.Backend, BackendSealed, BackendPKCS11)
}

// Spec gives the key's algorithm and length as keys.Spec.
func (k Key) Spec() keys.Spec { return keys.Spec{Algorithm: k.Algorithm, Bits: k.Bits} }

// RecordName gives the DNS name of the key's record,
// "<selector>._domainkey.<domain>" (RFC 6376 §3.6.2.1).
func (k Key) RecordName() string { return k.Selector + "._domainkey." + k.Domain }

// AssociatedData gives KeyAssociatedData for this key.
func (k Key) AssociatedData() []byte { return KeyAssociatedData(k.Domain, k.Selector) }

// Ref names the key's private half for a keys.Source: its row and, for a
// key in a PKCS#11 token, where in the token it is and which public key
// the token's object must hold.
func (k Key) Ref() keys.Ref {
	r := keys.Ref{ID: k.ID, AssociatedData: k.AssociatedData()}
	if k.Location.PKCS11() {
		r.Token = keys.TokenKey{
			Token:     k.Location.Token,
			Object:    keys.TokenObject{Label: k.Location.Label, ID: k.Location.ObjectID},
			Algorithm: k.Algorithm,
			PublicKey: k.PublicKey,
		}
	}
	return r
}

// KeyAssociatedData gives the associated data a DKIM private key is sealed
// with (keys.MasterKey.Seal): it names the row, so a sealed key copied to
// another domain or selector does not open. Domain and selector are
// unique together for all time, so this never names two rows. Both are
// taken in canonical form, so any accepted spelling gives the same bytes.
func KeyAssociatedData(domain, selector string) []byte {
	if d, err := mailaddr.ParseDomain(domain); err == nil {
		domain = d.String()
	}
	if s, err := NormalizeSelector(selector); err == nil {
		selector = s
	}
	return []byte("dkimd dkim key\x00" + domain + "\x00" + selector)
}

// NewKey is what CreateKey stores: a key with its sealed private key, saved
// in one transaction.
type NewKey struct {
	// Domain must exist; Selector must be free in it.
	Domain   string
	Selector string
	// Algorithm and Bits as keys.Spec; they are normalised (empty means
	// RSA 2048).
	Algorithm keys.Algorithm
	Bits      int
	// PublicKey as Key.PublicKey.
	PublicKey []byte
	// Location says where the private half lives; the zero value means
	// sealed in the database.
	Location KeyLocation
	// Sealed is the private key sealed under the master key with
	// KeyAssociatedData(Domain, Selector) (keys.MasterKey.SealSigner).
	// The store keeps it as given and never returns it in a Key. Required
	// for a sealed key, empty for a key in a PKCS#11 token.
	Sealed []byte
	// ReuseSelector allows a selector whose keys are all archived: a
	// delegated domain's two selectors are fixed by its customer's CNAMEs
	// and come back in turn. False (the zero value) refuses a selector
	// any key ever had.
	ReuseSelector bool
	// Replaces, when non-zero, names the key of the same domain and
	// algorithm this one replaces (Key.Replaces); the store refuses with
	// ErrInvalid a key that does not exist, is of another domain or
	// algorithm, or is revoked or archived.
	Replaces int64
}

// Normalize checks k and gives it in canonical form.
func (k NewKey) Normalize() (NewKey, error) {
	d, err := mailaddr.ParseDomain(k.Domain)
	if err != nil {
		return k, &FieldError{Field: "domain", Err: err}
	}
	k.Domain = d.String()
	s, err := NormalizeSelector(k.Selector)
	if err != nil {
		return k, &FieldError{Field: "selector", Err: err}
	}
	k.Selector = s
	if n := len(s) + len("._domainkey.") + len(k.Domain); n > mailaddr.MaxDomainLen {
		return k, Invalid("selector", "%s._domainkey.%s is %d characters, DNS allows 253", s, k.Domain, n)
	}
	spec, err := keys.Spec{Algorithm: k.Algorithm, Bits: k.Bits}.Normalize()
	if err != nil {
		f := "bits"
		if errors.Is(err, keys.ErrUnknownAlgorithm) {
			f = "algorithm"
		}
		return k, &FieldError{Field: f, Err: err}
	}
	k.Algorithm, k.Bits = spec.Algorithm, spec.Bits
	if len(k.PublicKey) == 0 {
		return k, Invalid("public_key", "empty")
	}
	if k.Replaces < 0 {
		return k, Invalid("replaces", "not a key ID: %d", k.Replaces)
	}
	if k.Location, err = k.Location.Normalize(); err != nil {
		return k, err
	}
	switch {
	case k.Location.PKCS11() && len(k.Sealed) > 0:
		return k, Invalid("sealed", "a key in a PKCS#11 token is stored without a sealed private key")
	case !k.Location.PKCS11() && len(k.Sealed) == 0:
		// Never a sealed key's row without its secret.
		return k, Invalid("sealed", "a key is stored with its sealed private key or not at all")
	}
	return k, nil
}

// KeyFilter selects keys for ListKeys. The zero value selects every key.
type KeyFilter struct {
	// Domain, if set, selects that domain's keys.
	Domain string
	// States, if any, selects keys in one of them.
	States []KeyState
}
