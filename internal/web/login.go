package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/store"
)

// logins checks names and passwords for POST /api/v1/login and the
// panel's login form alike. New gives both the same one: a guess counts
// against the same LoginLimits whichever of the two it is made at, so
// alternating between them gains an attacker nothing.
type logins struct {
	admin      *admin.Service
	now        func() time.Time
	sessionTTL time.Duration
	throttle   *throttle
}

// newLogins takes o with its defaults filled in.
func newLogins(o Options) *logins {
	return &logins{admin: o.Admin, now: o.Now, sessionTTL: o.SessionTTL, throttle: newThrottle(o.LoginLimits)}
}

// throttledError refuses a login, without checking its password, while
// its client address or account name has failed too often.
type throttledError struct {
	// wait is how long until the window of the failures ends.
	wait time.Duration
}

func (e *throttledError) Error() string { return "too many failed logins" }

// loginSession is a session started by a right password.
type loginSession struct {
	token   string
	account store.Account
	expires time.Time
	ttl     time.Duration
}

// cookie gives the session cookie to send with the answer.
func (s loginSession) cookie(r *http.Request) *http.Cookie {
	return sessionCookie(r, s.token, s.expires, s.ttl)
}

// login checks name and password, as typed, from the client at remote,
// and starts a session. It fails with a *throttledError while the
// throttle holds the address or the name, with admin.ErrBadLogin for a
// wrong name or password, or with what else went wrong. Neither the name
// (people type their password into it) nor the password is logged.
func (l *logins) login(ctx context.Context, log *slog.Logger, remote, name, password string) (loginSession, error) {
	// The throttle key: no account name is longer than store.MaxNameLen,
	// and a longer one must not grow the throttle's memory.
	key := strings.ToLower(name)
	if len(key) > store.MaxNameLen {
		key = key[:store.MaxNameLen]
	}
	now := l.now()
	if wait := l.throttle.begin(remote, key, now); wait > 0 {
		return loginSession{}, &throttledError{wait: wait}
	}
	tok, acc, err := l.admin.Login(ctx, name, password, remote, l.sessionTTL)
	if errors.Is(err, admin.ErrBadLogin) {
		return loginSession{}, err
	}
	if err != nil && tok == "" {
		return loginSession{}, err
	}
	l.throttle.succeed(remote, key)
	// With a token but an error, the session exists and only its audit
	// entry failed: the user is logged in, and the error is logged.
	if err != nil {
		log.With("account", acc.Name).Error("login_audit_failed", "err", err)
	}
	return loginSession{token: tok, account: acc, expires: now.Add(l.sessionTTL), ttl: l.sessionTTL}, nil
}
