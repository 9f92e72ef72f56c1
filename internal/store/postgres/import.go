package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dkimd/dkimd/internal/store"
)

// ErrNotEmpty means Import was asked to load a database that already holds
// dkimd's data; it never merges or overwrites.
var ErrNotEmpty = errors.New("postgres: the database is not empty")

// Importer loads rows as they are, IDs and times included, into an empty
// database (dkimd migrate from SQLite). Its methods run in the one
// transaction of DB.Import.
type Importer struct {
	ctx context.Context
	tx  pgx.Tx
}

// Import runs fn in one transaction on an empty database and commits what
// it loaded, or nothing if fn fails: a half-copied installation is never
// left behind. The identity sequences then continue after the largest IDs
// loaded. ErrNotEmpty if any domain, account, key, audit entry, queued
// message or master key check value is there already.
func (d *DB) Import(ctx context.Context, fn func(im *Importer) error) error {
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockWrite); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM accounts) +
	(SELECT count(*) FROM dkim_keys) + (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM queue_messages) +
	(SELECT count(*) FROM master_key_check)`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: it holds %d rows of domains, accounts, keys, audit entries, queued mail or a master key check", ErrNotEmpty, n)
		}
		if err := fn(&Importer{ctx: ctx, tx: tx}); err != nil {
			return err
		}
		for _, table := range []string{"dkim_keys", "tokens", "audit_log", "dns_checks"} {
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'), coalesce((SELECT max(id) FROM `+table+`), 0) + 1, false)`); err != nil {
				return fmt.Errorf("sequence of %s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotEmpty) {
		return fmt.Errorf("postgres: import: %w", err)
	}
	return err
}

func (im *Importer) exec(what, sql string, args ...any) error {
	if _, err := im.tx.Exec(im.ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Domain loads a domain.
func (im *Importer) Domain(d store.Domain) error {
	return im.exec("domain "+d.Name, `INSERT INTO domains (name, auto_activate, oversign, publish, delegated_name, rotate_every, update_server, tsig_name, tsig_sealed, created, updated)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.Name, d.AutoActivate, d.Oversign, string(d.Publish), d.DelegatedName, int64(d.RotateEvery),
		d.UpdateServer, d.TSIGName, tsigBytes(d.TSIGSealed), d.Created.UnixNano(), d.Updated.UnixNano())
}

// Key loads a key and its sealed private key, with its ID, state and the
// times of its steps. Keys must come in ID order (Replaces names an
// earlier one).
func (im *Importer) Key(k store.Key, sealed []byte) error {
	var replaces *int64
	if k.Replaces != 0 {
		replaces = &k.Replaces
	}
	loc := k.Location
	if err := im.exec("key "+k.RecordName(), `INSERT INTO dkim_keys (id, domain, selector, algorithm, bits, state, public_key, created,
	activated, retired, revoked, archived, replaces, backend, pkcs11_token, pkcs11_label, pkcs11_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		k.ID, k.Domain, k.Selector, string(k.Algorithm), k.Bits, string(k.State), k.PublicKey, k.Created.UnixNano(),
		toNullStamp(k.Activated), toNullStamp(k.Retired), toNullStamp(k.Revoked), toNullStamp(k.Archived), replaces,
		string(loc.Backend), loc.Token, loc.Label, loc.ObjectID); err != nil {
		return err
	}
	if loc.PKCS11() {
		return nil // the private half stays in the token
	}
	return im.exec("key "+k.RecordName(), `INSERT INTO dkim_key_secrets (key_id, sealed) VALUES ($1, $2)`, k.ID, sealed)
}

// User loads an outgoing user with its networks and grants.
func (im *Importer) User(u store.OutgoingUser) error {
	what := "user " + u.Name
	if err := im.exec(what, `INSERT INTO outgoing_users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		u.Name, u.Domain, string(u.Auth), u.PasswordHash, u.IdentityHeader, u.Enabled, u.Selector, u.AllowForeignFrom,
		u.Created.UnixNano(), u.Updated.UnixNano()); err != nil {
		return err
	}
	for _, p := range u.Networks {
		if err := im.exec(what, `INSERT INTO outgoing_user_networks (user_name, prefix) VALUES ($1, $2)`, u.Name, p.String()); err != nil {
			return err
		}
	}
	for _, g := range u.GrantedDomains {
		if err := im.exec(what, `INSERT INTO outgoing_user_grants (user_name, domain) VALUES ($1, $2)`, u.Name, g); err != nil {
			return err
		}
	}
	return nil
}

// Account loads a panel account with its domains.
func (im *Importer) Account(a store.Account) error {
	what := "account " + a.Name
	if err := im.exec(what, `INSERT INTO accounts (`+accountCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		a.Name, string(a.Role), a.PasswordHash, a.Enabled, a.Created.UnixNano(), a.Updated.UnixNano()); err != nil {
		return err
	}
	for _, d := range a.Domains {
		if err := im.exec(what, `INSERT INTO account_domains (account, domain) VALUES ($1, $2)`, a.Name, d); err != nil {
			return err
		}
	}
	return nil
}

// Token loads a token (its hash) with its ID.
func (im *Importer) Token(t store.Token) error {
	return im.exec(fmt.Sprintf("token %d", t.ID), `INSERT INTO tokens (id, account, kind, label, hash, created, expires) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.ID, t.Account, string(t.Kind), t.Label, t.Hash, t.Created.UnixNano(), toNullStamp(t.Expires))
}

// Entry loads an audit log entry with its ID and time.
func (im *Importer) Entry(e store.AuditEntry) error {
	return im.exec(fmt.Sprintf("audit entry %d", e.ID), `INSERT INTO audit_log (id, time, actor, remote, action, object_kind, object_id, domain, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ID, e.Time.UnixNano(), e.Actor, e.Remote, e.Action, e.ObjectKind, e.ObjectID, e.Domain, e.Detail)
}

// DNSCheck loads one check of a key's record.
func (im *Importer) DNSCheck(c store.DNSCheck) error {
	return im.exec(fmt.Sprintf("dns check %d", c.ID), `INSERT INTO dns_checks (id, key_id, time, status, ok, summary) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.ID, c.KeyID, c.Time.UnixNano(), c.Status, c.OK, c.Summary)
}

// MasterKeyCheck loads the master key's check value, so that the nodes
// accept the master key the data was sealed under, and only it.
func (im *Importer) MasterKeyCheck(v []byte) error {
	return im.exec("master key check", `INSERT INTO master_key_check (id, value, created) VALUES (1, $1, 0)`, v)
}
