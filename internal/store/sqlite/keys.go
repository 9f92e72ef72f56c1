package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
)

const keyCols = `id, domain, selector, algorithm, bits, state, public_key, created, activated, retired, revoked, archived, replaces, backend, pkcs11_token, pkcs11_label, pkcs11_id`

func scanKey(row interface{ Scan(...any) error }) (store.Key, error) {
	var k store.Key
	var alg, state, backend string
	var created int64
	var activated, retired, revoked, archived, replaces sql.NullInt64
	if err := row.Scan(&k.ID, &k.Domain, &k.Selector, &alg, &k.Bits, &state, &k.PublicKey,
		&created, &activated, &retired, &revoked, &archived, &replaces,
		&backend, &k.Location.Token, &k.Location.Label, &k.Location.ObjectID); err != nil {
		return k, err
	}
	k.Replaces = replaces.Int64
	k.Location.Backend = store.KeyBackend(backend)
	k.Algorithm, k.State = keys.Algorithm(alg), store.KeyState(state)
	k.Created = fromStamp(created)
	k.Activated, k.Retired = fromNullStamp(activated), fromNullStamp(retired)
	k.Revoked, k.Archived = fromNullStamp(revoked), fromNullStamp(archived)
	return k, nil
}

// getKey reads key id with st: stmts.key, or its copy in a transaction.
func getKey(ctx context.Context, st *sql.Stmt, id int64) (store.Key, error) {
	k, err := scanKey(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.Explain(store.ErrNotFound, "Key %d was not found.", id)
	}
	return k, err
}

// CreateKey implements store.Keys.
func (d *DB) CreateKey(ctx context.Context, nk store.NewKey) (store.Key, error) {
	nk, err := nk.Normalize()
	if err != nil {
		return store.Key{}, err
	}
	now := d.stamp()
	var id int64
	err = d.write(ctx, func(tx *sql.Tx) error {
		if ok, err := domainExists(ctx, tx, nk.Domain); err != nil {
			return err
		} else if !ok {
			return store.Explain(store.ErrNotFound, "Domain %s was not found.", nk.Domain)
		}
		var n int
		q := `SELECT count(*) FROM dkim_keys WHERE domain = ? AND selector = ?`
		if nk.ReuseSelector {
			q += ` AND state <> 'archived'`
		}
		if err := tx.QueryRowContext(ctx, q, nk.Domain, nk.Selector).Scan(&n); err != nil {
			return err
		}
		if n > 0 && nk.ReuseSelector {
			return store.Explain(store.ErrExists, "Selector %s in %s is held by a key not yet archived.", nk.Selector, nk.Domain)
		}
		if n > 0 {
			return fmt.Errorf("%w: selector %s in %s (selectors are never reused, even after a key is archived)",
				store.ErrExists, nk.Selector, nk.Domain)
		}
		if err := d.checkReplaces(ctx, tx, nk); err != nil {
			return err
		}
		loc := nk.Location
		err := tx.QueryRowContext(ctx, `INSERT INTO dkim_keys (domain, selector, algorithm, bits, state, public_key, created, replaces,
	backend, pkcs11_token, pkcs11_label, pkcs11_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			nk.Domain, nk.Selector, string(nk.Algorithm), nk.Bits, string(store.KeyPending), nk.PublicKey, now,
			sql.NullInt64{Int64: nk.Replaces, Valid: nk.Replaces != 0},
			string(loc.Backend), loc.Token, loc.Label, loc.ObjectID).Scan(&id)
		if err != nil || loc.PKCS11() {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO dkim_key_secrets (key_id, sealed) VALUES (?, ?)`, id, nk.Sealed)
		return err
	})
	if err != nil {
		return store.Key{}, dbErr("create key", err)
	}
	return store.Key{
		ID: id, Domain: nk.Domain, Selector: nk.Selector, Algorithm: nk.Algorithm, Bits: nk.Bits,
		State: store.KeyPending, PublicKey: nk.PublicKey, Created: fromStamp(now), Replaces: nk.Replaces,
		Location: nk.Location,
	}, nil
}

// DeleteKey implements store.Keys.
func (d *DB) DeleteKey(ctx context.Context, id int64) error {
	err := d.write(ctx, func(tx *sql.Tx) error {
		k, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyCols+` FROM dkim_keys WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: key %d", store.ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if k.State != store.KeyPending || !k.Activated.IsZero() {
			return fmt.Errorf("%w: key %s is %s; only a pending key that never signed can be deleted", store.ErrConflict, k.Selector, k.State)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dkim_keys WHERE replaces = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: key %s has a key made to replace it", store.ErrConflict, k.Selector)
		}
		// The secret and the check history go with the row (ON DELETE
		// CASCADE); said here too, so it does not hang on the schema alone.
		if _, err := tx.ExecContext(ctx, `DELETE FROM dkim_key_secrets WHERE key_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM dns_checks WHERE key_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM dkim_keys WHERE id = ?`, id)
		return err
	})
	return dbErr("delete key", err)
}

// GetKey implements store.Keys.
func (d *DB) GetKey(ctx context.Context, id int64) (store.Key, error) {
	return cached(ctx, d, "key\x00"+strconv.FormatInt(id, 10), store.CloneKey,
		func() (store.Key, error) { return d.keyByID(ctx, id) })
}

func (d *DB) keyByID(ctx context.Context, id int64) (store.Key, error) {
	k, err := getKey(ctx, d.stmts.key, id)
	if err != nil {
		return store.Key{}, dbErr("get key", err)
	}
	return k, nil
}

// KeyBySelector implements store.Keys.
func (d *DB) KeyBySelector(ctx context.Context, domain, selector string) (store.Key, error) {
	dom, err := lookupDomain(domain)
	if err != nil {
		return store.Key{}, err
	}
	sel, err := store.NormalizeSelector(selector)
	if err != nil {
		return store.Key{}, fmt.Errorf("%w: selector %q: %v", store.ErrNotFound, selector, err)
	}
	k, err := scanKey(d.db.QueryRowContext(ctx, `SELECT `+keyCols+` FROM dkim_keys WHERE domain = ? AND selector = ?
ORDER BY state = 'archived', id DESC LIMIT 1`, dom, sel))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Key{}, store.Explain(store.ErrNotFound, "Key %s._domainkey.%s was not found.", sel, dom)
	}
	if err != nil {
		return store.Key{}, dbErr("get key", err)
	}
	return k, nil
}

// ListKeys implements store.Keys.
func (d *DB) ListKeys(ctx context.Context, f store.KeyFilter) ([]store.Key, error) {
	var where []string
	var args []any
	if f.Domain != "" {
		dom, err := mailaddr.ParseDomain(f.Domain)
		if err != nil {
			return nil, nil // no domain of that name, so no keys
		}
		where, args = append(where, "domain = ?"), append(args, dom.String())
	}
	if len(f.States) > 0 {
		var marks []string
		for _, s := range f.States {
			if !s.Valid() {
				return nil, store.Invalid("state", "unknown key state %q", s)
			}
			marks, args = append(marks, "?"), append(args, string(s))
		}
		where = append(where, "state IN ("+strings.Join(marks, ", ")+")")
	}
	q := `SELECT ` + keyCols + ` FROM dkim_keys`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY domain, id`, args...)
	return scanKeys(rows, err)
}

// scanKeys reads the keys of a query's result.
func scanKeys(rows *sql.Rows, err error) ([]store.Key, error) {
	if err != nil {
		return nil, dbErr("list keys", err)
	}
	defer rows.Close()
	var out []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, dbErr("list keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list keys", err)
	}
	return out, nil
}

// ActiveKeys implements store.Keys.
func (d *DB) ActiveKeys(ctx context.Context, domain string) ([]store.Key, error) {
	return cached(ctx, d, "active\x00"+domain, store.CloneKeys,
		func() ([]store.Key, error) { return d.activeKeys(ctx, domain) })
}

func (d *DB) activeKeys(ctx context.Context, domain string) ([]store.Key, error) {
	dom, err := mailaddr.ParseDomain(domain)
	if err != nil {
		return nil, nil
	}
	return scanKeys(d.stmts.activeKeys.QueryContext(ctx, dom.String(), string(store.KeyActive)))
}

// SetKeyState implements store.Keys.
func (d *DB) SetKeyState(ctx context.Context, id int64, to store.KeyState) (store.Key, error) {
	ks, err := d.setKeyStates(ctx, "set key state", []store.KeyStateChange{{ID: id, To: to}})
	if err != nil {
		return store.Key{}, err
	}
	return ks[0], nil
}

// SealedKey implements store.Keys.
func (d *DB) SealedKey(ctx context.Context, id int64) ([]byte, error) {
	var sealed []byte
	err := d.stmts.sealedKey.QueryRowContext(ctx, id).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Explain(store.ErrNotFound, "Key %d was not found.", id)
	}
	if err != nil {
		return nil, dbErr("sealed key", err)
	}
	return sealed, nil
}
