package admin

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/store"
)

// NewAccountRequest asks for a panel account.
type NewAccountRequest struct {
	Name     string
	Role     store.Role
	Domains  []string
	Password string // plain text; empty means token-only
}

// AddAccount creates a panel account. Admins only.
func (s *Service) AddAccount(ctx context.Context, a Actor, r NewAccountRequest) (store.Account, error) {
	if err := requireAdmin(a); err != nil {
		return store.Account{}, err
	}
	acc := store.Account{Name: r.Name, Role: r.Role, Domains: r.Domains, Enabled: true}
	if r.Password != "" {
		h, err := hashNewPassword(r.Password)
		if err != nil {
			return acc, err
		}
		acc.PasswordHash = h
	}
	acc, err := s.o.Store.AddAccount(ctx, acc)
	if err != nil {
		return acc, err
	}
	return acc, s.audit(ctx, a, "account.add", "account", acc.Name, "", fmt.Sprintf("role=%s domains=%v", acc.Role, acc.Domains))
}

// SetAccountPassword sets a new password; an account may change its own.
// It ends the account's sessions, all but the one asking (a.Session): who
// knew the old password, or held a session opened with it, is out. API
// tokens are kept: they are revoked one by one (RemoveToken).
func (s *Service) SetAccountPassword(ctx context.Context, a Actor, name, password string) error {
	if !a.self(name) {
		return store.Explain(ErrForbidden, "Only an admin may set another account's password.")
	}
	acc, err := s.o.Store.GetAccount(ctx, name)
	if err != nil {
		return err
	}
	if acc.PasswordHash, err = hashNewPassword(password); err != nil {
		return err
	}
	if _, err := s.o.Store.UpdateAccount(ctx, acc); err != nil {
		return err
	}
	n, err := s.endSessions(ctx, a, acc.Name)
	if err != nil {
		return err
	}
	return s.audit(ctx, a, "account.password", "account", acc.Name, "", fmt.Sprintf("password changed; %d other sessions ended", n))
}

// AccountUpdate changes an account; nil fields are left as they are.
type AccountUpdate struct {
	Role    *store.Role
	Domains *[]string
	Enabled *bool
}

// UpdateAccount changes an account's role, domains or whether it is
// enabled, and ends its sessions (all but the one asking): a session
// opened under the old rights does not carry on under the new ones. API
// tokens are kept; they act with the account's rights of the moment, and
// none at all while it is disabled. Admins only; nobody demotes or
// disables the last enabled admin.
func (s *Service) UpdateAccount(ctx context.Context, a Actor, name string, u AccountUpdate) (store.Account, error) {
	if err := requireAdmin(a); err != nil {
		return store.Account{}, err
	}
	acc, err := s.o.Store.GetAccount(ctx, name)
	if err != nil {
		return acc, err
	}
	old := acc
	if u.Role != nil {
		acc.Role = *u.Role
		if acc.Role == store.RoleAdmin && u.Domains == nil {
			acc.Domains = nil
		}
	}
	if u.Domains != nil {
		acc.Domains = *u.Domains
	}
	if u.Enabled != nil {
		acc.Enabled = *u.Enabled
	}
	if old.Role == store.RoleAdmin && old.Enabled && (acc.Role != store.RoleAdmin || !acc.Enabled) {
		if err := s.notLastAdmin(ctx, old.Name); err != nil {
			return old, err
		}
	}
	if acc, err = s.o.Store.UpdateAccount(ctx, acc); err != nil {
		return old, err
	}
	n, err := s.endSessions(ctx, a, acc.Name)
	if err != nil {
		return acc, err
	}
	return acc, s.audit(ctx, a, "account.update", "account", acc.Name, "",
		fmt.Sprintf("role=%s domains=%v enabled=%t; %d sessions ended", acc.Role, acc.Domains, acc.Enabled, n))
}

// notLastAdmin fails with store.ErrConflict when name is the only enabled
// admin.
func (s *Service) notLastAdmin(ctx context.Context, name string) error {
	all, err := s.o.Store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	admins := 0
	for _, x := range all {
		if x.Role == store.RoleAdmin && x.Enabled {
			admins++
		}
	}
	if admins <= 1 {
		return store.Explain(store.ErrConflict, "Account %s is the last admin; make another account an admin first.", name)
	}
	return nil
}

// endSessions removes the panel sessions of an account, but the actor's
// own (a.Session), and says how many it ended.
func (s *Service) endSessions(ctx context.Context, a Actor, account string) (int, error) {
	ts, err := s.o.Store.ListTokens(ctx, account)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range ts {
		if t.Kind != store.TokenSession || (a.Session != 0 && t.ID == a.Session) {
			continue
		}
		err := s.o.Store.RemoveToken(ctx, account, t.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // ended meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("admin: end sessions of %s: %w", account, err)
		}
		n++
	}
	return n, nil
}

// ListTokens gives an account's API tokens and panel sessions, newest
// first, as stored: never the secrets, which are not kept. An account
// may list its own; admins any account's.
func (s *Service) ListTokens(ctx context.Context, a Actor, account string) ([]store.Token, error) {
	if !a.self(account) {
		return nil, store.Explain(ErrForbidden, "Only an admin may see another account's tokens.")
	}
	n, err := store.NormalizeName(account)
	if err != nil {
		return nil, &store.FieldError{Field: "name", Err: err}
	}
	return s.o.Store.ListTokens(ctx, n)
}

// RemoveToken revokes one of an account's API tokens, or ends one of its
// sessions. An account may revoke its own; admins any account's.
func (s *Service) RemoveToken(ctx context.Context, a Actor, account string, id int64) error {
	if !a.self(account) {
		return store.Explain(ErrForbidden, "Only an admin may revoke another account's tokens.")
	}
	n, err := store.NormalizeName(account)
	if err != nil {
		return &store.FieldError{Field: "name", Err: err}
	}
	if err := s.o.Store.RemoveToken(ctx, n, id); err != nil {
		return err
	}
	return s.audit(ctx, a, "token.remove", "account", n, "", fmt.Sprintf("token %d", id))
}

// ListAccounts gives every account. Admins only.
func (s *Service) ListAccounts(ctx context.Context, a Actor) ([]store.Account, error) {
	if err := requireAdmin(a); err != nil {
		return nil, err
	}
	return s.o.Store.ListAccounts(ctx)
}

// RemoveAccount removes an account and its tokens. Admins only; nobody
// removes the last enabled admin.
func (s *Service) RemoveAccount(ctx context.Context, a Actor, name string) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	acc, err := s.o.Store.GetAccount(ctx, name)
	if err != nil {
		return err
	}
	if acc.Role == store.RoleAdmin && acc.Enabled {
		if err := s.notLastAdmin(ctx, acc.Name); err != nil {
			return err
		}
	}
	if err := s.o.Store.RemoveAccount(ctx, acc.Name); err != nil {
		return err
	}
	return s.audit(ctx, a, "account.remove", "account", acc.Name, "", "")
}

// NewToken makes an API token for an account and returns it: the only time
// it is shown. An account may make its own; admins any account's.
func (s *Service) NewToken(ctx context.Context, a Actor, account, label string, ttl time.Duration) (string, store.Token, error) {
	if !a.self(account) {
		return "", store.Token{}, store.Explain(ErrForbidden, "Only an admin may make tokens for another account.")
	}
	acc, err := s.o.Store.GetAccount(ctx, account)
	if err != nil {
		return "", store.Token{}, err
	}
	tok, hash, err := auth.NewToken()
	if err != nil {
		return "", store.Token{}, err
	}
	t := store.Token{Account: acc.Name, Kind: store.TokenAPI, Label: label, Hash: hash}
	if ttl > 0 {
		t.Expires = s.now().Add(ttl)
	}
	if t, err = s.o.Store.AddToken(ctx, t); err != nil {
		return "", t, err
	}
	return tok, t, s.audit(ctx, a, "token.add", "account", acc.Name, "", "api token "+label)
}

// Authenticate finds the enabled account behind a bearer token.
func (s *Service) Authenticate(ctx context.Context, token string) (store.Account, store.Token, error) {
	return s.o.Store.AccountByToken(ctx, auth.HashToken(token))
}

// Login checks an account's password and, on success, makes a session token
// that lasts ttl. A wrong login fails with ErrBadLogin, wrapping
// ErrUnknownAccount or ErrBadPassword to say which, for the audit log
// (LoginFailed) only: the client must not learn which names exist.
func (s *Service) Login(ctx context.Context, name, password, remote string, ttl time.Duration) (string, store.Account, error) {
	acc, err := s.o.Store.GetAccount(ctx, name)
	if err != nil || !acc.Enabled || acc.PasswordHash == "" || auth.CheckPassword(acc.PasswordHash, password) != nil {
		if err != nil {
			// Spend the time of a real check, so a wrong name and a wrong
			// password look alike.
			_, _ = auth.HashPassword(password)
			return "", store.Account{}, fmt.Errorf("%w: %w", ErrBadLogin, ErrUnknownAccount)
		}
		return "", store.Account{}, fmt.Errorf("%w: %w", ErrBadLogin, ErrBadPassword)
	}
	tok, hash, err := auth.NewToken()
	if err != nil {
		return "", acc, err
	}
	if _, err := s.o.Store.AddToken(ctx, store.Token{Account: acc.Name, Kind: store.TokenSession, Hash: hash, Expires: s.now().Add(ttl)}); err != nil {
		return "", acc, err
	}
	return tok, acc, s.audit(ctx, Actor{Name: acc.Name, Account: &acc, Remote: remote}, "account.login", "account", acc.Name, "", "")
}

// ErrBadLogin is the one answer to a wrong name or password.
var ErrBadLogin = fmt.Errorf("%w: wrong name or password", ErrForbidden)

// The reasons a login fails, wrapped in ErrBadLogin for the audit log;
// never shown to the client.
var (
	// ErrUnknownAccount: no account has the name.
	ErrUnknownAccount = errors.New("unknown account")
	// ErrBadPassword: the password is wrong, or the account is disabled or
	// has no password.
	ErrBadPassword = errors.New("bad password")
)

// Login failure reasons as LoginFailed writes them.
const (
	LoginUnknownAccount = "unknown account"
	LoginBadPassword    = "bad password"
	LoginThrottled      = "throttled"
)

// LoginFailed writes a failed login to the audit log: the name as typed
// (cut to store.MaxNameLen, control characters dropped), the client
// address and the reason (LoginUnknownAccount, LoginBadPassword,
// LoginThrottled). The actor is "anonymous": nobody has proved who they
// are, and a typed name must not pose as "cli" or "system". Never the
// password. The caller caps how often it calls this per client.
func (s *Service) LoginFailed(ctx context.Context, remote, name, reason string) error {
	return s.audit(ctx, Actor{Name: "anonymous", Remote: remote}, "account.login_failed", "account", typedName(name), "", reason)
}

// typedName makes a name as typed fit for the audit log.
func typedName(name string) string {
	b := make([]rune, 0, len(name))
	for _, r := range name {
		if unicode.IsControl(r) || r == utf8.RuneError {
			continue
		}
		b = append(b, r)
	}
	out := string(b)
	for len(out) > store.MaxNameLen {
		_, size := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-size]
	}
	return out
}

// ListAudit gives audit entries. A domain admin sees entries of its own
// domains only: it must name one unless it manages exactly one.
func (s *Service) ListAudit(ctx context.Context, a Actor, f store.AuditFilter) ([]store.AuditEntry, error) {
	if !a.IsAdmin() {
		if f.Domain == "" && len(a.Account.Domains) == 1 {
			f.Domain = a.Account.Domains[0]
		}
		if f.Domain == "" {
			return nil, store.Invalid("domain", "name one of your domains")
		}
		d, err := s.manage(ctx, a, f.Domain)
		if err != nil {
			return nil, err
		}
		f.Domain = d
	}
	return s.o.Store.ListAudit(ctx, f)
}

// Logout ends one of the actor's own panel sessions. Ending a session that
// is already gone is not an error.
func (s *Service) Logout(ctx context.Context, a Actor, sessionID int64) error {
	if a.Account == nil {
		return nil
	}
	err := s.o.Store.RemoveToken(ctx, a.Account.Name, sessionID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.audit(ctx, a, "account.logout", "account", a.Account.Name, "", "")
}

// self reports whether the actor may act on the account named: an admin
// on any, an account on itself. It is checked before the account is looked
// up, so that a domain admin cannot tell which names exist.
func (a Actor) self(name string) bool {
	if a.IsAdmin() {
		return true
	}
	n, err := store.NormalizeName(name)
	return err == nil && a.Account != nil && a.Account.Name == n
}

// MinPasswordLen is the shortest password dkimd accepts for accounts and
// outgoing users.
const MinPasswordLen = 12

// hashNewPassword checks a new password's length and hashes it.
func hashNewPassword(pw string) (string, error) {
	if len(pw) < MinPasswordLen {
		return "", store.Invalid("password", "use at least %d characters", MinPasswordLen)
	}
	return auth.HashPassword(pw)
}
