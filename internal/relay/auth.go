package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/store"
)

// authenticate checks a user name and password from SMTP AUTH on a
// connection from ip. It answers the same for an unknown user, a wrong
// password, an IP-only user, a disabled user and a source address outside
// the user's networks, taking as long for each; the log says which.
func (s *Server) authenticate(ctx context.Context, c *conn, identity, name, password string) (store.OutgoingUser, error) {
	var none store.OutgoingUser
	name, nerr := store.NormalizeName(name)
	if identity != "" {
		// RFC 4616 §2: an authorization identity other than the user is a
		// request to act as someone else, which nobody may.
		if id, err := store.NormalizeName(identity); err != nil || id != name {
			nerr = errors.New("authorization identity differs from the user name")
		}
	}
	ipKey, userKey := ipKey(c.ip), "user:"+name
	if s.authFail.locked(ctx, ipKey, userKey) {
		c.hangUp()
		return none, fmt.Errorf("%w: address or user over the limit", errAuthLocked)
	}

	var u store.OutgoingUser
	var why string
	hash := s.dummyHash
	known := false
	if nerr != nil {
		why = "bad user name: " + nerr.Error()
	} else if got, err := s.opts.Directory.GetUser(ctx, name); errors.Is(err, store.ErrNotFound) {
		why = "no such user"
	} else if err != nil {
		return none, fmt.Errorf("%w: %w", errAuthTemporary, err)
	} else {
		u, known = got, true
		switch {
		case u.PasswordHash == "":
			why = "user has no password (" + string(u.Auth) + " user)"
		default:
			hash = u.PasswordHash
		}
	}
	if err := s.checkPassword(ctx, hash, password); err != nil {
		if errors.Is(err, auth.ErrMismatch) || errors.Is(err, auth.ErrBadHash) {
			if why == "" {
				why = "wrong password"
			}
		} else {
			return none, fmt.Errorf("%w: %w", errAuthTemporary, err)
		}
	}
	if why == "" && !u.Enabled {
		why = "user disabled"
	}
	if why == "" && len(u.Networks) > 0 && u.Auth == store.AuthPassword {
		if _, ok := store.MatchNetworks(u.Networks, c.ip); !ok {
			why = "source address outside the user's networks"
		}
	}
	if why == "" {
		s.authFail.succeeded(ctx, userKey)
		return u, nil
	}

	// Only names that exist are tracked per user, so guessed names cannot
	// fill the table.
	if !known {
		userKey = ""
	}
	n, locked := s.authFail.failed(ctx, ipKey, userKey)
	delay := s.opts.AuthFailureDelay << min(n-1, 16)
	delay = min(delay, s.opts.MaxAuthFailureDelay)
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	if locked {
		c.hangUp()
		return none, fmt.Errorf("%w: user %q: %s (failure %d)", errAuthLocked, clip(name), why, n)
	}
	return none, fmt.Errorf("%w: user %q: %s (failure %d)", errAuthFailed, clip(name), why, n)
}

// checkPassword runs one argon2id check at a time per slot, so that many
// connections cannot make the process allocate without bound.
func (s *Server) checkPassword(ctx context.Context, hash, password string) error {
	select {
	case s.authSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.authSem }()
	return auth.CheckPassword(hash, password)
}

// authFailures counts failed AUTH attempts per address and per user name
// within a window, in two tables of bounded size.
type authFailures struct {
	maxIP, maxUser int
	window         time.Duration
	capacity       int
	now            func() time.Time

	mu     sync.Mutex
	byIP   map[string]*failCount
	byUser map[string]*failCount
}

type failCount struct {
	n    int
	last time.Time
}

func newAuthFailures(o *Options) *authFailures {
	return &authFailures{maxIP: o.MaxAuthFailuresPerIP, maxUser: o.MaxAuthFailuresPerUser,
		window: o.AuthFailureWindow, capacity: o.MaxTrackedAuth, now: o.Now,
		byIP: make(map[string]*failCount), byUser: make(map[string]*failCount)}
}

func (a *authFailures) count(m map[string]*failCount, key string, now time.Time) int {
	f := m[key]
	if f == nil || now.Sub(f.last) > a.window {
		return 0
	}
	return f.n
}

// locked reports whether the address or the user is over its limit.
func (a *authFailures) locked(_ context.Context, ipKey, userKey string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	return a.count(a.byIP, ipKey, now) >= a.maxIP || a.count(a.byUser, userKey, now) >= a.maxUser
}

// failed records a failure for the address and (unless "") the user and
// gives the larger count and whether that reached a limit.
func (a *authFailures) failed(_ context.Context, ipKey, userKey string) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	n := a.bump(a.byIP, ipKey, now)
	locked := n >= a.maxIP
	if userKey != "" {
		nu := a.bump(a.byUser, userKey, now)
		n = max(n, nu)
		locked = locked || nu >= a.maxUser
	}
	return n, locked
}

func (a *authFailures) bump(m map[string]*failCount, key string, now time.Time) int {
	f := m[key]
	if f == nil {
		if len(m) >= a.capacity {
			a.evict(m, now)
		}
		f = &failCount{}
		m[key] = f
	}
	if now.Sub(f.last) > a.window {
		f.n = 0
	}
	f.n++
	f.last = now
	return f.n
}

// evict drops expired entries, or if none, the one seen longest ago.
func (a *authFailures) evict(m map[string]*failCount, now time.Time) {
	var oldest string
	var oldestT time.Time
	for k, f := range m {
		if now.Sub(f.last) > a.window {
			delete(m, k)
			continue
		}
		if oldest == "" || f.last.Before(oldestT) {
			oldest, oldestT = k, f.last
		}
	}
	if len(m) >= a.capacity {
		delete(m, oldest)
	}
}

// succeeded forgets a user's failures. The address keeps its count: one
// good password must not buy more guesses at other users.
func (a *authFailures) succeeded(_ context.Context, userKey string) {
	a.mu.Lock()
	delete(a.byUser, userKey)
	a.mu.Unlock()
}

// saslServer wraps a mechanism so that its own errors (malformed
// responses) reach the client as a fixed reply, not as their text.
type saslServer struct {
	sasl.Server
}

func (s saslServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := s.Server.Next(resp)
	var se *smtp.SMTPError
	if err != nil && !errors.As(err, &se) {
		err = reply(errAuthSyntax)
	}
	return ch, done, err
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl offers only as a client:
// still the only mechanism some old clients know.
type loginServer struct {
	step     int
	username string
	check    func(username, password string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		if bytes.IndexByte(resp, 0) >= 0 || len(resp) > store.MaxNameLen {
			return nil, false, errors.New("bad user name")
		}
		l.username, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.username, string(resp))
	}
	return nil, false, errors.New("unexpected response")
}
