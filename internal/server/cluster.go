package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/dkimd/dkimd/internal/store/postgres"
	"github.com/dkimd/dkimd/internal/web"
)

// clusterTimeout bounds one call of the shared login throttle, which has
// no context of its own.
const clusterTimeout = 5 * time.Second

// leaderPoll is how often a node tries to become the leader of the
// cluster-wide jobs (the DNS monitor), and how often the leader checks
// that it still is: the longest the job stops when its node dies.
const leaderPoll = 5 * time.Second

// loginThrottle gives the shared login throttle on PostgreSQL, nil (the
// panel's own, in memory) on SQLite.
func loginThrottle(d *Data, log *slog.Logger) web.LoginThrottle {
	if d.PG == nil {
		return nil
	}
	return newSharedLoginThrottle(d.PG.Counters(), log)
}

// sharedLoginThrottle is web.LoginThrottle on the counters every node
// shares, under web.DefaultLoginLimits: a load balancer may send each
// login to another node, and a guesser gains nothing by it. Counts are
// added first and compared after, so logins racing on several nodes are
// all counted before any password is checked. When the database cannot
// be reached it lets the login go on: the account lookup, in the same
// database, fails then anyway.
type sharedLoginThrottle struct {
	c      *postgres.Counters
	limits web.LoginLimits
	now    func() time.Time
	log    *slog.Logger
}

func newSharedLoginThrottle(c *postgres.Counters, log *slog.Logger) *sharedLoginThrottle {
	return &sharedLoginThrottle{c: c, limits: web.DefaultLoginLimits(), now: time.Now, log: log}
}

func (t *sharedLoginThrottle) keys(remote, name string) (pair, ip, nm string) {
	ipk := web.ClientKey(remote)
	return "login/pair/" + ipk + "/" + name, "login/ip/" + ipk, "login/name/" + name
}

// Begin implements web.LoginThrottle.
func (t *sharedLoginThrottle) Begin(remote, name string, now time.Time) web.LoginDecision {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	pair, ip, nm := t.keys(remote, name)
	w := t.limits.Window
	np, pend, err1 := t.c.Add(ctx, pair, 1, now, w, false)
	ni, iend, err2 := t.c.Add(ctx, ip, 1, now, w, false)
	nn, _, err3 := t.c.Add(ctx, nm, 1, now, w, false)
	if err := firstErr(err1, err2, err3); err != nil {
		t.log.Warn("login_throttle_unavailable", "err", err)
		return web.LoginDecision{}
	}
	var d web.LoginDecision
	if np > t.limits.PerPair {
		d.Wait = max(d.Wait, pend.Sub(now))
	}
	if ni > t.limits.PerIP {
		d.Wait = max(d.Wait, iend.Sub(now))
	}
	if d.Wait > 0 {
		return d
	}
	if over := nn - 1 - t.limits.PerName; over >= 0 {
		d.Delay = min(time.Duration(over+1)*t.limits.NameDelay, t.limits.MaxNameDelay)
	}
	return d
}

// Succeed implements web.LoginThrottle: the pair and the name are
// forgotten, the address gives back the count Begin took.
func (t *sharedLoginThrottle) Succeed(remote, name string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	pair, ip, nm := t.keys(remote, name)
	err := t.c.Remove(ctx, pair, nm)
	if n, _, cerr := t.c.Count(ctx, ip, now); cerr == nil && n > 0 {
		_, _, cerr = t.c.Add(ctx, ip, -1, now, t.limits.Window, false)
		err = firstErr(err, cerr)
	}
	if err != nil {
		t.log.Warn("login_throttle_unavailable", "err", err)
	}
}

// AuditFailure implements web.LoginThrottle.
func (t *sharedLoginThrottle) AuditFailure(remote string, now time.Time) bool {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	w := t.limits.Window
	n, _, err := t.c.Add(ctx, "login/audit/"+web.ClientKey(remote), 1, now, w, false)
	if err != nil {
		t.log.Warn("login_throttle_unavailable", "err", err)
		return true
	}
	total, _, err := t.c.Add(ctx, "login/audit", 1, now, w, false)
	if err != nil {
		t.log.Warn("login_throttle_unavailable", "err", err)
		return true
	}
	return n <= t.limits.AuditPerIP && total <= t.limits.AuditTotal
}

// expireCounters removes the shared counters whose window ended, every
// ten minutes, on the leader only.
func expireCounters(ctx context.Context, c *postgres.Counters, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.Expire(ctx, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("counters_not_expired", "err", err)
			}
		}
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

var _ web.LoginThrottle = (*sharedLoginThrottle)(nil)
