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

// Logins checks names and passwords for POST /api/v1/login and the
// panel's login form alike. Serve gives both the same one (NewLogins, set
// as Options.Logins of the API and of the panel): a guess counts
// against the same LoginThrottle whichever of the two it is made at, so
// alternating between them gains an attacker nothing.
type Logins struct {
	admin      *admin.Service
	now        func() time.Time
	sessionTTL time.Duration
	throttle   LoginThrottle
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewLogins gives a login counter to share between the API and the
// panel: set as Options.Logins of both, a failed login at either counts
// against the same LoginLimits (or LoginThrottle). The options must be
// the ones the handlers get.
func NewLogins(o Options) *Logins { return newLogins(o.WithDefaults()) }

// ThrottledFor tells whether err refuses a login for too many failures,
// and for how long.
func ThrottledFor(err error) (time.Duration, bool) {
	var te *throttledError
	if errors.As(err, &te) {
		return te.wait, true
	}
	return 0, false
}

// newLogins takes o with its defaults filled in.
func newLogins(o Options) *Logins {
	th := o.LoginThrottle
	if th == nil {
		th = newMemThrottle(o.LoginLimits)
	}
	return &Logins{admin: o.Admin, now: o.Now, sessionTTL: o.SessionTTL, throttle: th, sleep: sleepCtx}
}

// sleepCtx waits d, or less if ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// throttledError refuses a login, without checking its password, while
// its client address, or its name from that address, has failed too
// often.
type throttledError struct {
	// wait is how long until the window of the failures ends.
	wait time.Duration
}

func (e *throttledError) Error() string { return "too many failed logins" }

// LoginSession is a session started by a right password.
type LoginSession struct {
	token   string
	account store.Account
	expires time.Time
	ttl     time.Duration
}

// Account gives the account logged in.
func (s LoginSession) Account() store.Account { return s.account }

// Cookie gives the session cookie to send with the answer.
func (s LoginSession) Cookie(r *http.Request) *http.Cookie {
	return sessionCookie(r, s.token, s.expires, s.ttl)
}

// Login checks name and password, as typed, from the client at remote,
// and starts a session. It fails with a *throttledError while the
// throttle holds the address or the pair, with admin.ErrBadLogin for a
// wrong name or password, or with what else went wrong. A name under
// attack from many addresses is only slowed (LoginDecision.Delay).
// Failures go to the audit log, as many per client as the throttle allows
// (LoginThrottle.AuditFailure); the password never does, and the name
// only there.
func (l *Logins) Login(ctx context.Context, log *slog.Logger, remote, name, password string) (LoginSession, error) {
	// The throttle key: no account name is longer than store.MaxNameLen,
	// and a longer one must not grow the throttle's memory.
	key := strings.ToLower(name)
	if len(key) > store.MaxNameLen {
		key = key[:store.MaxNameLen]
	}
	now := l.now()
	d := l.throttle.Begin(remote, key, now)
	if d.Wait > 0 {
		l.failed(ctx, log, remote, name, admin.LoginThrottled, now)
		return LoginSession{}, &throttledError{wait: d.Wait}
	}
	if d.Delay > 0 {
		if err := l.sleep(ctx, d.Delay); err != nil {
			return LoginSession{}, err
		}
	}
	tok, acc, err := l.admin.Login(ctx, name, password, remote, l.sessionTTL)
	if errors.Is(err, admin.ErrBadLogin) {
		reason := admin.LoginBadPassword
		if errors.Is(err, admin.ErrUnknownAccount) {
			reason = admin.LoginUnknownAccount
		}
		l.failed(ctx, log, remote, name, reason, now)
		return LoginSession{}, err
	}
	if err != nil && tok == "" {
		return LoginSession{}, err
	}
	l.throttle.Succeed(remote, key, now)
	// With a token but an error, the session exists and only its audit
	// entry failed: the user is logged in, and the error is logged.
	if err != nil {
		log.With("account", acc.Name).Error("login_audit_failed", "err", err)
	}
	return LoginSession{token: tok, account: acc, expires: now.Add(l.sessionTTL), ttl: l.sessionTTL}, nil
}

// failed writes a failed login to the audit log, unless the client has
// used up its share (then the request's log line is all there is).
func (l *Logins) failed(ctx context.Context, log *slog.Logger, remote, name, reason string, now time.Time) {
	if !l.throttle.AuditFailure(remote, now) {
		log.Info("login_failure_not_audited", "reason", reason)
		return
	}
	if err := l.admin.LoginFailed(ctx, remote, name, reason); err != nil {
		log.Error("login_failure_audit_failed", "err", err)
	}
}
