package postgres

import (
	"context"
	"database/sql"
	"strings"

	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
)

// AppendAudit implements store.Audit.
func (d *DB) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	e, err := e.Normalize()
	if err != nil {
		return store.AuditEntry{}, err
	}
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	e.Time = fromStamp(e.Time.UnixNano())
	err = d.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO audit_log (time, actor, remote, action, object_kind, object_id, domain, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			e.Time.UnixNano(), e.Actor, e.Remote, e.Action, e.ObjectKind, e.ObjectID, e.Domain, e.Detail).Scan(&e.ID)
	})
	if err != nil {
		return store.AuditEntry{}, dbErr("append audit", err)
	}
	return e, nil
}

// ListAudit implements store.Audit.
func (d *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	if f.Domain != "" {
		dom, err := mailaddr.ParseDomain(f.Domain)
		if err != nil {
			return nil, nil
		}
		where = append(where, "domain = "+bind(&args, dom))
	}
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"action", f.Action}, {"object_kind", f.ObjectKind}} {
		if c.v != "" {
			where = append(where, c.col+" = "+bind(&args, c.v))
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= "+bind(&args, f.Since.UnixNano()))
	}
	if f.Before > 0 {
		where = append(where, "id < "+bind(&args, f.Before))
	}
	q := `SELECT id, time, actor, remote, action, object_kind, object_id, domain, detail FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ` + bind(&args, f.EffectiveLimit())
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, dbErr("list audit", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var t int64
		if err := rows.Scan(&e.ID, &t, &e.Actor, &e.Remote, &e.Action, &e.ObjectKind, &e.ObjectID, &e.Domain, &e.Detail); err != nil {
			return nil, dbErr("list audit", err)
		}
		e.Time = fromStamp(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list audit", err)
	}
	return out, nil
}
