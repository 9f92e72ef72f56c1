package store

import (
	"context"
	"net/netip"
)

// Domains keeps mail domains.
type Domains interface {
	// AddDomain stores a new domain (name normalised, see mailaddr.ParseDomain).
	// ErrExists if it is there already.
	AddDomain(ctx context.Context, d Domain) (Domain, error)
	// GetDomain finds a domain by name, in any accepted spelling
	// ("Bücher.example." finds "xn--bcher-kva.example"). ErrNotFound.
	GetDomain(ctx context.Context, name string) (Domain, error)
	// ListDomains gives every domain, sorted by name.
	ListDomains(ctx context.Context) ([]Domain, error)
	// UpdateDomain replaces the settings of an existing domain (found by
	// d.Name). ErrNotFound.
	UpdateDomain(ctx context.Context, d Domain) (Domain, error)
	// RemoveDomain removes a domain. Without opts.Force it refuses with
	// ErrConflict, saying what is left, while the domain has keys, users,
	// grants to other users or domain admins. ErrNotFound.
	RemoveDomain(ctx context.Context, name string, opts RemoveOptions) error
}

// Keys keeps DKIM keys and their sealed private keys.
type Keys interface {
	// CreateKey stores a pending key and its sealed private key in one
	// transaction: there is never a key without its secret nor a secret
	// without its key. A key in a PKCS#11 token (NewKey.Location) is
	// stored with no secret. ErrNotFound if the domain does not exist, ErrExists
	// if the selector is taken in it (by a key in any state), ErrInvalid.
	CreateKey(ctx context.Context, k NewKey) (Key, error)
	// GetKey finds a key by ID. ErrNotFound.
	GetKey(ctx context.Context, id int64) (Key, error)
	// KeyBySelector finds a domain's key by selector. ErrNotFound.
	KeyBySelector(ctx context.Context, domain, selector string) (Key, error)
	// ListKeys gives the keys f selects, ordered by domain and ID.
	ListKeys(ctx context.Context, f KeyFilter) ([]Key, error)
	// ActiveKeys gives a domain's active keys, ordered by ID; none (and no
	// error) for an unknown domain.
	ActiveKeys(ctx context.Context, domain string) ([]Key, error)
	// SetKeyState moves a key to another state and records the time of
	// the step (see KeyState.Next). The check and the change are one
	// transaction, so two admins racing get one success and one
	// ErrConflict. ErrNotFound, ErrInvalid for an unknown state.
	SetKeyState(ctx context.Context, id int64, to KeyState) (Key, error)
	// SetKeyStates makes several state changes in one transaction: all of
	// them or none. Each is checked as SetKeyState checks it, and against
	// KeyStateChange.From when set. A key that becomes active retires, in
	// the same transaction, the key it replaces (Key.Replaces) if that one
	// is active and no change names it: so a rotation never leaves a
	// moment with both or neither signing. SetKeyState does the same. It
	// returns every key changed, in the order of changes, then the keys
	// retired that way. ErrNotFound, ErrConflict, ErrInvalid.
	SetKeyStates(ctx context.Context, changes ...KeyStateChange) ([]Key, error)
	// DeleteKey removes a pending key that never signed, with its sealed
	// private key and its DNS check history, freeing its selector: a key
	// made by mistake. ErrConflict for a key in any other state, one ever
	// activated, or one another key was made to replace. ErrNotFound.
	// Whether its record was ever seen in DNS is the caller's to check.
	DeleteKey(ctx context.Context, id int64) error
	// SealedKey gives a key's sealed private key, to be opened with the
	// master key and Key.AssociatedData. ErrNotFound, also for a key in a
	// PKCS#11 token.
	SealedKey(ctx context.Context, id int64) ([]byte, error)
}

// Users keeps outgoing users.
type Users interface {
	// AddUser stores a new user. ErrExists if the name is taken (names are
	// unique across dkimd), ErrNotFound if the owner domain does not exist,
	// ErrInvalid (also for a granted domain that does not exist).
	AddUser(ctx context.Context, u OutgoingUser) (OutgoingUser, error)
	// GetUser finds a user by name, in any case. ErrNotFound.
	GetUser(ctx context.Context, name string) (OutgoingUser, error)
	// ListUsers gives a domain's users (owned, not granted), or every user
	// for "", sorted by name.
	ListUsers(ctx context.Context, domain string) ([]OutgoingUser, error)
	// UpdateUser replaces every field of an existing user (found by
	// u.Name) but Created: read, change, write. ErrNotFound for the user,
	// ErrInvalid (also for an owner or granted domain that does not exist).
	UpdateUser(ctx context.Context, u OutgoingUser) (OutgoingUser, error)
	// RemoveUser removes a user. ErrNotFound.
	RemoveUser(ctx context.Context, name string) error
	// UserByIP finds the IP-authenticated or re-authenticating user whose
	// networks hold addr, the most specific network winning. Disabled
	// users are found too (the caller refuses them) so that disabling a
	// user never hands its address to a broader one. ErrNotFound if none,
	// ErrConflict if two users hold the same most specific network.
	UserByIP(ctx context.Context, addr netip.Addr) (OutgoingUser, error)
	// NetworkClaims gives every network of the IP-authenticated and
	// re-authenticating users, enabled or not (the networks UserByIP
	// matches), sorted by user name and then network. A password user's
	// networks only restrict where its password is accepted and are not
	// claims.
	NetworkClaims(ctx context.Context) ([]NetworkClaim, error)
}

// Accounts keeps panel accounts and their tokens.
type Accounts interface {
	// AddAccount stores a new account. ErrExists, ErrInvalid (also for a
	// domain that does not exist).
	AddAccount(ctx context.Context, a Account) (Account, error)
	// GetAccount finds an account by name, in any case. ErrNotFound.
	GetAccount(ctx context.Context, name string) (Account, error)
	// ListAccounts gives every account, sorted by name.
	ListAccounts(ctx context.Context) ([]Account, error)
	// UpdateAccount replaces every field of an existing account but
	// Created. ErrNotFound, ErrInvalid.
	UpdateAccount(ctx context.Context, a Account) (Account, error)
	// RemoveAccount removes an account and its tokens. ErrNotFound.
	RemoveAccount(ctx context.Context, name string) error

	// AddToken stores a token hash for an existing account. ErrNotFound
	// for the account, ErrExists for a hash already stored.
	AddToken(ctx context.Context, t Token) (Token, error)
	// AccountByToken finds the enabled account a token hash belongs to, if
	// the token has not expired. ErrNotFound otherwise, whichever the
	// reason, so a caller cannot tell a guess from an expired token.
	AccountByToken(ctx context.Context, hash []byte) (Account, Token, error)
	// ListTokens gives an account's tokens, newest first, expired ones
	// included until RemoveExpiredTokens. ErrNotFound for the account.
	ListTokens(ctx context.Context, account string) ([]Token, error)
	// RemoveToken removes one of an account's tokens. ErrNotFound.
	RemoveToken(ctx context.Context, account string, id int64) error
	// RemoveExpiredTokens removes every expired token and says how many.
	RemoveExpiredTokens(ctx context.Context) (int, error)
}

// Audit keeps the append-only audit log. There is deliberately no method to
// change or remove an entry.
type Audit interface {
	// AppendAudit adds an entry, setting ID and, when zero, Time.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// ListAudit gives the entries f selects, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// DNSChecks keeps the history of DNS checks of each key's record.
type DNSChecks interface {
	// AddDNSCheck stores the outcome of a check, setting ID (and Time when
	// zero), and, when keep is positive, removes that key's oldest checks
	// beyond the newest keep in the same transaction. ErrNotFound for the
	// key, ErrInvalid.
	AddDNSCheck(ctx context.Context, c DNSCheck, keep int) (DNSCheck, error)
	// ListDNSChecks gives the checks f selects, newest first.
	ListDNSChecks(ctx context.Context, f DNSCheckFilter) ([]DNSCheck, error)
}

// MasterKeyChecks keeps the check value of the master key the private keys
// are sealed under (keys.MasterKey.CheckValue), so that a missing or foreign
// master key is refused at start rather than found later when no key opens.
// The value is not secret; the master key itself is never stored.
type MasterKeyChecks interface {
	// MasterKeyCheck gives the stored check value. ErrNotFound if none is
	// stored yet.
	MasterKeyCheck(ctx context.Context) ([]byte, error)
	// SetMasterKeyCheck stores the check value when none is stored. A
	// database's check value never changes: storing the one stored does
	// nothing (two processes starting at once may both try), another gives
	// ErrConflict. ErrInvalid for an empty value.
	SetMasterKeyCheck(ctx context.Context, check []byte) error
}

// Store is everything a backend keeps. Every method is safe for concurrent
// use, also by several processes sharing one database (dkimd serve and the
// CLI).
type Store interface {
	Domains
	Keys
	Users
	Accounts
	Audit
	DNSChecks
	MasterKeyChecks
	// Check verifies the database: its own integrity check, every sealed
	// key has its sealed private key, no sealed private key lacks its key,
	// and no key in a PKCS#11 token has one. A nil error means all is well.
	Check(ctx context.Context) error
	// Close releases the database.
	Close() error
}
