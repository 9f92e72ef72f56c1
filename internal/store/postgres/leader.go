package postgres

import (
	"context"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// lockLeader is the base of the advisory lock keys of Lead; the job's name
// hashes into the low 32 bits.
const lockLeader int64 = 0x646b696d_00000000 | 1<<31

// Lead runs fn on one node of the cluster at a time: the node whose
// connection holds the session advisory lock named by job. Every node
// calls Lead; the others try again every poll. When the leader dies its
// session ends and PostgreSQL drops the lock, so another node takes over
// within poll. The leader pings its connection every poll and cancels fn's
// context when the ping fails, since it may have lost the lock with its
// session (a restart of PostgreSQL): for a moment of up to poll two nodes
// may run fn, so fn must be safe to run twice (the DNS monitor's state
// changes are checked transitions). Lead returns when ctx ends, after fn.
func (d *DB) Lead(ctx context.Context, job string, poll time.Duration, log *slog.Logger, fn func(ctx context.Context)) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := fnv.New32a()
	h.Write([]byte(job))
	key := lockLeader | int64(h.Sum32())
	for ctx.Err() == nil {
		led, err := d.leadOnce(ctx, key, job, poll, log, fn)
		if err != nil && ctx.Err() == nil {
			log.Warn("leader_election_failed", "job", job, "err", err)
		}
		if led && ctx.Err() == nil {
			log.Warn("leader_lost", "job", job)
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// leadOnce connects, tries the lock, and if it gets it runs fn until the
// connection fails or ctx ends. led says whether fn ran.
func (d *DB) leadOnce(ctx context.Context, key int64, job string, poll time.Duration, log *slog.Logger, fn func(ctx context.Context)) (led bool, err error) {
	// A connection of its own: the lock lives and dies with its session,
	// never with a pooled connection that another caller reuses.
	conn, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil || !got {
		return false, err
	}
	log.Info("leader_elected", "job", job)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(fctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-done:
			return true, nil
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, poll)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return true, err
			}
		}
	}
}
