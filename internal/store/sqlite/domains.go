package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
)

// AddDomain implements store.Domains.
func (d *DB) AddDomain(ctx context.Context, dom store.Domain) (store.Domain, error) {
	dom, err := dom.Normalize()
	if err != nil {
		return store.Domain{}, err
	}
	now := d.stamp()
	err = d.write(ctx, func(tx *sql.Tx) error {
		if ok, err := domainExists(ctx, tx, dom.Name); err != nil {
			return err
		} else if ok {
			return store.Explain(store.ErrExists, "Domain %s already exists.", dom.Name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO domains (name, auto_activate, oversign, publish, delegated_name, rotate_every, update_server, tsig_name, tsig_sealed, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			dom.Name, boolInt(dom.AutoActivate), dom.Oversign, string(dom.Publish), dom.DelegatedName, int64(dom.RotateEvery),
			dom.UpdateServer, dom.TSIGName, []byte(dom.TSIGSealed), now, now)
		return err
	})
	if err != nil {
		return store.Domain{}, dbErr("add domain", err)
	}
	dom.Created, dom.Updated = fromStamp(now), fromStamp(now)
	return dom, nil
}

// lookupDomain normalises a name given to a lookup; a name that cannot be a
// domain is simply not found.
func lookupDomain(name string) (string, error) {
	n, err := mailaddr.ParseDomain(name)
	if err != nil {
		return "", fmt.Errorf("%w: domain %q: %v", store.ErrNotFound, name, err)
	}
	return n.String(), nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func domainExists(ctx context.Context, q querier, name string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM domains WHERE name = ?`, name).Scan(&n)
	return n > 0, err
}

// requireDomains fails with a *store.FieldError for field if any of names
// is not a stored domain.
func requireDomains(ctx context.Context, q querier, field string, names []string) error {
	for i, n := range names {
		ok, err := domainExists(ctx, q, n)
		if err != nil {
			return err
		}
		if !ok {
			return store.Invalid(fmt.Sprintf("%s[%d]", field, i), "domain %s does not exist", n)
		}
	}
	return nil
}

const domainCols = `name, auto_activate, oversign, publish, delegated_name, rotate_every, update_server, tsig_name, tsig_sealed, created, updated`

func scanDomain(row interface{ Scan(...any) error }) (store.Domain, error) {
	var dom store.Domain
	var auto int
	var created, updated, every int64
	var publish string
	var tsig []byte
	if err := row.Scan(&dom.Name, &auto, &dom.Oversign, &publish, &dom.DelegatedName, &every, &dom.UpdateServer, &dom.TSIGName, &tsig, &created, &updated); err != nil {
		return dom, err
	}
	dom.TSIGSealed = string(tsig)
	dom.Publish, dom.RotateEvery = store.PublishMode(publish), time.Duration(every)
	dom.AutoActivate = auto == 1
	dom.Created, dom.Updated = fromStamp(created), fromStamp(updated)
	return dom, nil
}

// GetDomain implements store.Domains.
func (d *DB) GetDomain(ctx context.Context, name string) (store.Domain, error) {
	return cached(ctx, d, "domain\x00"+name, func(v store.Domain) store.Domain { return v },
		func() (store.Domain, error) { return d.getDomain(ctx, name) })
}

func (d *DB) getDomain(ctx context.Context, name string) (store.Domain, error) {
	n, err := lookupDomain(name)
	if err != nil {
		return store.Domain{}, err
	}
	dom, err := scanDomain(d.stmts.domain.QueryRowContext(ctx, n))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Domain{}, store.Explain(store.ErrNotFound, "Domain %s was not found.", n)
	}
	if err != nil {
		return store.Domain{}, dbErr("get domain", err)
	}
	return dom, nil
}

// ListDomains implements store.Domains.
func (d *DB) ListDomains(ctx context.Context) ([]store.Domain, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+domainCols+` FROM domains ORDER BY name`)
	if err != nil {
		return nil, dbErr("list domains", err)
	}
	defer rows.Close()
	var out []store.Domain
	for rows.Next() {
		dom, err := scanDomain(rows)
		if err != nil {
			return nil, dbErr("list domains", err)
		}
		out = append(out, dom)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list domains", err)
	}
	return out, nil
}

// UpdateDomain implements store.Domains.
func (d *DB) UpdateDomain(ctx context.Context, dom store.Domain) (store.Domain, error) {
	dom, err := dom.Normalize()
	if err != nil {
		return store.Domain{}, err
	}
	var out store.Domain
	err = d.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE domains SET auto_activate = ?, oversign = ?, publish = ?, delegated_name = ?, rotate_every = ?,
	update_server = ?, tsig_name = ?, tsig_sealed = ?, updated = ? WHERE name = ?`,
			boolInt(dom.AutoActivate), dom.Oversign, string(dom.Publish), dom.DelegatedName, int64(dom.RotateEvery),
			dom.UpdateServer, dom.TSIGName, []byte(dom.TSIGSealed), d.stamp(), dom.Name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.Explain(store.ErrNotFound, "Domain %s was not found.", dom.Name)
		}
		out, err = scanDomain(tx.QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE name = ?`, dom.Name))
		return err
	})
	if err != nil {
		return store.Domain{}, dbErr("update domain", err)
	}
	return out, nil
}

// RemoveDomain implements store.Domains.
func (d *DB) RemoveDomain(ctx context.Context, name string, opts store.RemoveOptions) error {
	n, err := lookupDomain(name)
	if err != nil {
		return err
	}
	err = d.write(ctx, func(tx *sql.Tx) error {
		if ok, err := domainExists(ctx, tx, n); err != nil {
			return err
		} else if !ok {
			return store.Explain(store.ErrNotFound, "Domain %s was not found.", n)
		}
		deps := []struct {
			what  string
			count string
			del   string
		}{
			{"keys", `SELECT count(*) FROM dkim_keys WHERE domain = ?`, `DELETE FROM dkim_keys WHERE domain = ?`},
			{"grants to other domains' users", `SELECT count(*) FROM outgoing_user_grants WHERE domain = ?`, `DELETE FROM outgoing_user_grants WHERE domain = ?`},
			{"outgoing users", `SELECT count(*) FROM outgoing_users WHERE domain = ?`, `DELETE FROM outgoing_users WHERE domain = ?`},
			{"domain admins", `SELECT count(*) FROM account_domains WHERE domain = ?`, `DELETE FROM account_domains WHERE domain = ?`},
		}
		var left []string
		for _, dep := range deps {
			var c int
			if err := tx.QueryRowContext(ctx, dep.count, n).Scan(&c); err != nil {
				return err
			}
			if c > 0 {
				left = append(left, fmt.Sprintf("%d %s", c, dep.what))
			}
		}
		if len(left) > 0 && !opts.Force {
			return store.Explain(store.ErrConflict, "Domain %s still has %s; remove them first, or force.", n, strings.Join(left, ", "))
		}
		for _, dep := range deps {
			// Key secrets and user networks and grants go by ON DELETE
			// CASCADE.
			if _, err := tx.ExecContext(ctx, dep.del, n); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM domains WHERE name = ?`, n)
		return err
	})
	return dbErr("remove domain", err)
}
