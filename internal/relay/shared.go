package relay

import (
	"context"
	"log/slog"
	"time"
)

// Counters keeps counts in windows in a store every node of a cluster
// shares (store/postgres.Counters), so that the per-user message limits
// and the AUTH failure limits hold for the cluster, not per node.
type Counters interface {
	// Count gives key's count in its current window (0 when none).
	Count(ctx context.Context, key string, now time.Time) (int, time.Time, error)
	// Add adds delta to key's count, starting a window of length window
	// when the last one ended; with sliding each Add moves the window's
	// end to now+window. It gives the new count.
	Add(ctx context.Context, key string, delta int, now time.Time, window time.Duration, sliding bool) (int, time.Time, error)
	// Remove forgets keys.
	Remove(ctx context.Context, keys ...string) error
}

// messageLimiter bounds the messages each user sends per hour and day.
type messageLimiter interface {
	allow(ctx context.Context, user string, now time.Time) bool
	sent(ctx context.Context, user string, now time.Time)
}

// authLimiter counts failed AUTH attempts per address and per user name.
type authLimiter interface {
	locked(ctx context.Context, ipKey, userKey string) bool
	failed(ctx context.Context, ipKey, userKey string) (int, bool)
	succeeded(ctx context.Context, userKey string)
}

// sharedRate is messageLimiter on Counters: one count per user and clock
// hour, one per user and UTC day.
type sharedRate struct {
	c               Counters
	perHour, perDay int
	log             *slog.Logger
}

func rateKeys(user string, now time.Time) (hour, day string, hourStart, dayStart time.Time) {
	now = now.UTC()
	hourStart, dayStart = now.Truncate(time.Hour), now.Truncate(24*time.Hour)
	return "relay/hour/" + hourStart.Format("2006010215") + "/" + user,
		"relay/day/" + dayStart.Format("20060102") + "/" + user, hourStart, dayStart
}

// allow lets the message through when the store cannot be read: the
// message is then refused by the queue in the same store anyway (4xx),
// and a limit must not turn an outage of the counters into one of mail.
func (r *sharedRate) allow(ctx context.Context, user string, now time.Time) bool {
	hk, dk, _, _ := rateKeys(user, now)
	if r.perHour >= 0 {
		n, _, err := r.c.Count(ctx, hk, now)
		if err != nil {
			r.log.Warn("rate_limit_unavailable", "user", user, "err", err)
			return true
		}
		if n >= r.perHour {
			return false
		}
	}
	if r.perDay >= 0 {
		n, _, err := r.c.Count(ctx, dk, now)
		if err != nil {
			r.log.Warn("rate_limit_unavailable", "user", user, "err", err)
			return true
		}
		if n >= r.perDay {
			return false
		}
	}
	return true
}

func (r *sharedRate) sent(ctx context.Context, user string, now time.Time) {
	hk, dk, hs, ds := rateKeys(user, now)
	if r.perHour >= 0 {
		if _, _, err := r.c.Add(ctx, hk, 1, hs, time.Hour, false); err != nil {
			r.log.Warn("rate_limit_not_counted", "user", user, "err", err)
		}
	}
	if r.perDay >= 0 {
		if _, _, err := r.c.Add(ctx, dk, 1, ds, 24*time.Hour, false); err != nil {
			r.log.Warn("rate_limit_not_counted", "user", user, "err", err)
		}
	}
}

// sharedAuth is authLimiter on Counters, with the in-memory one's rules:
// a count lasts the window after its last failure.
type sharedAuth struct {
	c              Counters
	maxIP, maxUser int
	window         time.Duration
	now            func() time.Time
	log            *slog.Logger
}

func authKey(k string) string { return "relay/auth/" + k }

func (a *sharedAuth) locked(ctx context.Context, ipKey, userKey string) bool {
	now := a.now()
	for _, k := range []struct {
		key string
		max int
	}{{ipKey, a.maxIP}, {userKey, a.maxUser}} {
		n, _, err := a.c.Count(ctx, authKey(k.key), now)
		if err != nil {
			// The user lookup in the same store fails too: AUTH answers
			// 454 whatever this says.
			a.log.Warn("auth_throttle_unavailable", "err", err)
			return false
		}
		if n >= k.max {
			return true
		}
	}
	return false
}

func (a *sharedAuth) failed(ctx context.Context, ipKey, userKey string) (int, bool) {
	now := a.now()
	n, _, err := a.c.Add(ctx, authKey(ipKey), 1, now, a.window, true)
	if err != nil {
		a.log.Warn("auth_throttle_unavailable", "err", err)
		return 1, false
	}
	locked := n >= a.maxIP
	if userKey != "" {
		nu, _, err := a.c.Add(ctx, authKey(userKey), 1, now, a.window, true)
		if err != nil {
			a.log.Warn("auth_throttle_unavailable", "err", err)
			return n, locked
		}
		n = max(n, nu)
		locked = locked || nu >= a.maxUser
	}
	return n, locked
}

func (a *sharedAuth) succeeded(ctx context.Context, userKey string) {
	if err := a.c.Remove(ctx, authKey(userKey)); err != nil {
		a.log.Warn("auth_throttle_unavailable", "err", err)
	}
}
