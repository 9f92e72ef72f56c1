package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/dkimd/dkimd/internal/store"
)

// checkReplaces enforces store.NewKey.Replaces: the replaced key exists,
// is of the same domain and algorithm, and still publishes its key.
func (d *DB) checkReplaces(ctx context.Context, tx *sql.Tx, nk store.NewKey) error {
	if nk.Replaces == 0 {
		return nil
	}
	old, err := getKey(ctx, tx, nk.Replaces)
	if errors.Is(err, store.ErrNotFound) {
		return store.Invalid("replaces", "there is no key %d", nk.Replaces)
	}
	if err != nil {
		return err
	}
	switch {
	case old.Domain != nk.Domain:
		return store.Invalid("replaces", "key %s is of another domain", old.RecordName())
	case old.Algorithm != nk.Algorithm:
		return store.Invalid("replaces", "key %s is %s, the new key %s: a key replaces one of its own algorithm", old.RecordName(), old.Algorithm, nk.Algorithm)
	case old.State == store.KeyRevoked || old.State == store.KeyArchived:
		return store.Invalid("replaces", "key %s is %s already", old.RecordName(), old.State)
	}
	return nil
}

// stateColumn is the column recording the time a key reached a state.
func stateColumn(s store.KeyState) string {
	return map[store.KeyState]string{
		store.KeyActive: "activated", store.KeyRetired: "retired",
		store.KeyRevoked: "revoked", store.KeyArchived: "archived",
	}[s]
}

// SetKeyStates implements store.Keys.
func (d *DB) SetKeyStates(ctx context.Context, changes ...store.KeyStateChange) ([]store.Key, error) {
	return d.setKeyStates(ctx, "set key states", changes)
}

func (d *DB) setKeyStates(ctx context.Context, op string, changes []store.KeyStateChange) ([]store.Key, error) {
	if len(changes) == 0 {
		return nil, store.Invalid("changes", "no change given")
	}
	named := map[int64]bool{}
	for _, c := range changes {
		if !c.To.Valid() {
			return nil, store.CheckTransition("", c.To)
		}
		if c.From != "" && !c.From.Valid() {
			return nil, store.Invalid("from", "unknown key state %q", c.From)
		}
		if named[c.ID] {
			return nil, store.Invalid("changes", "key %d is named twice", c.ID)
		}
		named[c.ID] = true
	}
	var out []store.Key
	err := d.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		stamp := d.stamp()
		var retire []int64
		for _, c := range changes {
			k, err := getKey(ctx, tx, c.ID)
			if err != nil {
				return err
			}
			if c.From != "" && k.State != c.From {
				return store.Explain(store.ErrConflict, "Key %d (%s) is %s, not %s any more.", c.ID, k.RecordName(), k.State, c.From)
			}
			if err := store.CheckTransition(k.State, c.To); err != nil {
				return fmt.Errorf("key %d (%s): %w", c.ID, k.RecordName(), err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE dkim_keys SET state = $1, `+stateColumn(c.To)+` = $2 WHERE id = $3 AND state = $4`,
				string(c.To), stamp, c.ID, string(k.State)); err != nil {
				return err
			}
			if c.To == store.KeyActive && k.Replaces != 0 && !named[k.Replaces] && !slices.Contains(retire, k.Replaces) {
				retire = append(retire, k.Replaces)
			}
		}
		var retired []int64
		for _, id := range retire {
			// The rotation's second half: the replaced key stops signing in
			// the transaction that starts the new one, if it still signs.
			res, err := tx.ExecContext(ctx, `UPDATE dkim_keys SET state = $1, retired = $2 WHERE id = $3 AND state = $4`,
				string(store.KeyRetired), stamp, id, string(store.KeyActive))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				retired = append(retired, id)
			}
		}
		for _, c := range changes {
			k, err := getKey(ctx, tx, c.ID)
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		for _, id := range retired {
			k, err := getKey(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		return nil
	})
	if err != nil {
		return nil, dbErr(op, err)
	}
	return out, nil
}

// AddDNSCheck implements store.DNSChecks.
func (d *DB) AddDNSCheck(ctx context.Context, c store.DNSCheck, keep int) (store.DNSCheck, error) {
	c, err := c.Normalize()
	if err != nil {
		return store.DNSCheck{}, err
	}
	if c.Time.IsZero() {
		c.Time = d.now()
	}
	c.Time = fromStamp(c.Time.UnixNano())
	err = d.write(ctx, func(tx *sql.Tx) error {
		if _, err := getKey(ctx, tx, c.KeyID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO dns_checks (key_id, time, status, ok, summary) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			c.KeyID, c.Time.UnixNano(), c.Status, (c.OK), c.Summary).Scan(&c.ID); err != nil {
			return err
		}
		if keep <= 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM dns_checks WHERE key_id = $1 AND id <= (
	SELECT id FROM dns_checks WHERE key_id = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)`, c.KeyID, c.KeyID, keep)
		return err
	})
	if err != nil {
		return store.DNSCheck{}, dbErr("add dns check", err)
	}
	return c, nil
}

// ListDNSChecks implements store.DNSChecks.
func (d *DB) ListDNSChecks(ctx context.Context, f store.DNSCheckFilter) ([]store.DNSCheck, error) {
	q := `SELECT id, key_id, time, status, ok, summary FROM dns_checks`
	var args []any
	if f.KeyID != 0 {
		q += ` WHERE key_id = ` + bind(&args, f.KeyID)
	}
	q += ` ORDER BY id DESC LIMIT ` + bind(&args, f.EffectiveLimit())
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, dbErr("list dns checks", err)
	}
	defer rows.Close()
	var out []store.DNSCheck
	for rows.Next() {
		var c store.DNSCheck
		var t int64
		var ok bool
		if err := rows.Scan(&c.ID, &c.KeyID, &t, &c.Status, &ok, &c.Summary); err != nil {
			return nil, dbErr("list dns checks", err)
		}
		c.Time, c.OK = fromStamp(t), ok
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list dns checks", err)
	}
	return out, nil
}
