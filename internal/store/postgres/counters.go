package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Counters are windowed counters shared by every node of a cluster: what
// one node counts (a message sent, a failed password) the others see at
// once, so a limit holds however a load balancer spreads the connections.
// Each counter is one row, changed by single statements, so concurrent
// nodes never lose a count.
type Counters struct {
	pool *pgxpool.Pool
}

// Counters gives the shared counters of this database. Their commits do
// not wait for the disk: a crash of PostgreSQL may forget the last counts.
func (d *DB) Counters() *Counters { return &Counters{pool: d.lazy} }

// Count gives key's count and the end of its window; 0 and the zero time
// when there is none or its window ended by now.
func (c *Counters) Count(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	var n int
	var end int64
	err := c.pool.QueryRow(ctx, `SELECT n, expires FROM counters WHERE key = $1 AND expires > $2`, key, now.UnixNano()).Scan(&n, &end)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres: count %s: %w", key, err)
	}
	return n, time.Unix(0, end), nil
}

// Add adds delta to key's count and gives the new count and the window's
// end. A window that ended by now starts again at now with delta. The
// window lasts window from its start, or, with sliding, from this Add (a
// count that lives while it keeps growing).
func (c *Counters) Add(ctx context.Context, key string, delta int, now time.Time, window time.Duration, sliding bool) (int, time.Time, error) {
	var n int
	var end int64
	t, e := now.UnixNano(), now.Add(window).UnixNano()
	err := c.pool.QueryRow(ctx, `INSERT INTO counters (key, n, expires) VALUES ($1, $2, $4)
ON CONFLICT (key) DO UPDATE SET
	n = CASE WHEN counters.expires > $3 THEN counters.n + $2 ELSE $2 END,
	expires = CASE WHEN $5 OR counters.expires <= $3 THEN $4 ELSE counters.expires END
RETURNING n, expires`, key, delta, t, e, sliding).Scan(&n, &end)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres: count %s: %w", key, err)
	}
	return n, time.Unix(0, end), nil
}

// Remove forgets keys.
func (c *Counters) Remove(ctx context.Context, keys ...string) error {
	if _, err := c.pool.Exec(ctx, `DELETE FROM counters WHERE key = ANY($1)`, keys); err != nil {
		return fmt.Errorf("postgres: remove counters: %w", err)
	}
	return nil
}

// Expire removes the counters whose window ended before now, and says how
// many; any node may run it now and then.
func (c *Counters) Expire(ctx context.Context, now time.Time) (int64, error) {
	tag, err := c.pool.Exec(ctx, `DELETE FROM counters WHERE expires <= $1`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("postgres: expire counters: %w", err)
	}
	return tag.RowsAffected(), nil
}
