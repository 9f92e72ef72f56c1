package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
)

// migrations are applied in order, each once, each in its own transaction
// together with its row in schema_migrations. Never edit one that has
// shipped: add another.
//
// Times are INTEGER Unix nanoseconds (UTC); NULL means "not yet".
var migrations = []string{
	1: `
CREATE TABLE domains (
	name          TEXT PRIMARY KEY,
	auto_activate INTEGER NOT NULL DEFAULT 0 CHECK (auto_activate IN (0, 1)),
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL
) STRICT;

CREATE TABLE dkim_keys (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	domain     TEXT NOT NULL REFERENCES domains(name),
	selector   TEXT NOT NULL,
	algorithm  TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
	bits       INTEGER NOT NULL,
	state      TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired', 'revoked', 'archived')),
	public_key BLOB NOT NULL CHECK (length(public_key) > 0),
	created    INTEGER NOT NULL,
	activated  INTEGER,
	retired    INTEGER,
	revoked    INTEGER,
	archived   INTEGER,
	UNIQUE (domain, selector)
) STRICT;
CREATE INDEX dkim_keys_state ON dkim_keys (domain, state);

-- Sealed private keys live apart so that no query over keys can pick one up
-- by accident; a key and its secret are written in one transaction.
CREATE TABLE dkim_key_secrets (
	key_id INTEGER PRIMARY KEY REFERENCES dkim_keys(id) ON DELETE CASCADE,
	sealed BLOB NOT NULL CHECK (length(sealed) > 0)
) STRICT;

CREATE TABLE outgoing_users (
	name               TEXT PRIMARY KEY,
	domain             TEXT NOT NULL REFERENCES domains(name),
	auth               TEXT NOT NULL CHECK (auth IN ('password', 'ip', 'reauth')),
	password_hash      TEXT NOT NULL DEFAULT '',
	identity_header    TEXT NOT NULL DEFAULT '',
	enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1)),
	selector           TEXT NOT NULL DEFAULT '',
	allow_foreign_from INTEGER NOT NULL DEFAULT 0 CHECK (allow_foreign_from IN (0, 1)),
	created            INTEGER NOT NULL,
	updated            INTEGER NOT NULL
) STRICT;
CREATE INDEX outgoing_users_domain ON outgoing_users (domain);

CREATE TABLE outgoing_user_networks (
	user   TEXT NOT NULL REFERENCES outgoing_users(name) ON DELETE CASCADE,
	prefix TEXT NOT NULL,
	PRIMARY KEY (user, prefix)
) STRICT;

CREATE TABLE outgoing_user_grants (
	user   TEXT NOT NULL REFERENCES outgoing_users(name) ON DELETE CASCADE,
	domain TEXT NOT NULL REFERENCES domains(name),
	PRIMARY KEY (user, domain)
) STRICT;
CREATE INDEX outgoing_user_grants_domain ON outgoing_user_grants (domain);

CREATE TABLE accounts (
	name          TEXT PRIMARY KEY,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'domain')),
	password_hash TEXT NOT NULL DEFAULT '',
	enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL
) STRICT;

CREATE TABLE account_domains (
	account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
	domain  TEXT NOT NULL REFERENCES domains(name),
	PRIMARY KEY (account, domain)
) STRICT;
CREATE INDEX account_domains_domain ON account_domains (domain);

CREATE TABLE tokens (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	account TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
	kind    TEXT NOT NULL CHECK (kind IN ('api', 'session')),
	label   TEXT NOT NULL DEFAULT '',
	hash    BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
	created INTEGER NOT NULL,
	expires INTEGER
) STRICT;
CREATE INDEX tokens_account ON tokens (account);

-- No foreign keys: the log outlives what it talks about.
CREATE TABLE audit_log (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	time        INTEGER NOT NULL,
	actor       TEXT NOT NULL,
	remote      TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	object_kind TEXT NOT NULL DEFAULT '',
	object_id   TEXT NOT NULL DEFAULT '',
	domain      TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_log_domain ON audit_log (domain, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_time ON audit_log (time);

-- Append-only, enforced where the data lives and not only by the absence of
-- a Go method.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
`,
	2: `
-- Key rotation: the key a new one replaces, retired when it activates.
ALTER TABLE dkim_keys ADD COLUMN replaces INTEGER REFERENCES dkim_keys(id);

-- The history of DNS checks of each key's record, capped per key by the
-- writer (AddDNSCheck).
CREATE TABLE dns_checks (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	key_id  INTEGER NOT NULL REFERENCES dkim_keys(id) ON DELETE CASCADE,
	time    INTEGER NOT NULL,
	status  TEXT NOT NULL CHECK (status <> ''),
	ok      INTEGER NOT NULL CHECK (ok IN (0, 1)),
	summary TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX dns_checks_key ON dns_checks (key_id, id);
`,
	3: `
-- The check value of the master key the private keys are sealed under
-- (keys.MasterKey.CheckValue), never the key: one row, written once.
CREATE TABLE master_key_check (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	value   BLOB NOT NULL CHECK (length(value) > 0),
	created INTEGER NOT NULL
) STRICT;
`,
	4: `
-- Per-domain oversigning (store.Domain.Oversign): '' is dkimd's default set,
-- 'none' nothing, anything else a comma-separated list of field names.
ALTER TABLE domains ADD COLUMN oversign TEXT NOT NULL DEFAULT '';
`,
	5: `
-- Where each key's private half lives: sealed in dkim_key_secrets, or
-- inside a PKCS#11 token (then no secret row; Check enforces both ways).
ALTER TABLE dkim_keys ADD COLUMN backend TEXT NOT NULL DEFAULT 'sealed' CHECK (backend IN ('sealed', 'pkcs11'));
ALTER TABLE dkim_keys ADD COLUMN pkcs11_token TEXT NOT NULL DEFAULT '';
ALTER TABLE dkim_keys ADD COLUMN pkcs11_label TEXT NOT NULL DEFAULT '';
ALTER TABLE dkim_keys ADD COLUMN pkcs11_id TEXT NOT NULL DEFAULT '';
`,
	6: `
-- How a domain's key records reach DNS: by hand (manual), from dkimd's own
-- delegated zone behind two CNAMEs (delegated), or by RFC 2136 UPDATE to
-- the domain's own server (update); and how often its key rotates.
ALTER TABLE domains ADD COLUMN publish TEXT NOT NULL DEFAULT 'manual'
	CHECK (publish IN ('manual', 'delegated', 'update'));
ALTER TABLE domains ADD COLUMN delegated_name TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN rotate_every INTEGER NOT NULL DEFAULT 0 CHECK (rotate_every >= 0);
ALTER TABLE domains ADD COLUMN update_server TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN tsig_name TEXT NOT NULL DEFAULT '';
-- The TSIG secret sealed under the master key, like a private key.
ALTER TABLE domains ADD COLUMN tsig_sealed BLOB;
CREATE UNIQUE INDEX domains_delegated_name ON domains (delegated_name) WHERE delegated_name <> '';
`,
}

// rebuilds run inside a migration's transaction, with foreign keys off, for
// changes SQLite's ALTER TABLE cannot make.
var rebuilds = map[int]func(ctx context.Context, tx *sql.Tx) error{
	// A delegated domain's two selectors are fixed by the CNAMEs its
	// customer made once, so a selector comes back after the key that had
	// it is archived: unique among keys not archived, no longer for all
	// time.
	6: func(ctx context.Context, tx *sql.Tx) error {
		return rebuildTable(ctx, tx, "dkim_keys", "UNIQUE (domain, selector)",
			`CREATE UNIQUE INDEX dkim_keys_live_selector ON dkim_keys (domain, selector) WHERE state <> 'archived';
CREATE INDEX dkim_keys_selector ON dkim_keys (domain, selector)`)
	},
}

// rebuildTable rebuilds a table without one clause of its definition, the
// way SQLite documents for schema changes ALTER TABLE cannot make: a new
// table from the stored definition (which holds every column added since),
// the rows copied, the old table dropped, the new one renamed, its indexes
// and triggers made again, then extra statements.
func rebuildTable(ctx context.Context, tx *sql.Tx, table, drop, extra string) error {
	var def string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&def); err != nil {
		return fmt.Errorf("rebuild %s: %w", table, err)
	}
	i := strings.Index(def, drop)
	if i < 0 {
		return fmt.Errorf("rebuild %s: %q not in its definition", table, drop)
	}
	// The clause and the comma before it.
	j := strings.LastIndex(def[:i], ",")
	if j < 0 {
		return fmt.Errorf("rebuild %s: no comma before %q", table, drop)
	}
	def = def[:j] + def[i+len(drop):]
	open := strings.Index(def, "(")
	newDef := "CREATE TABLE " + table + "_new " + def[open:]
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_schema WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL`, table)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", table, err)
	}
	var again []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("rebuild %s: %w", table, err)
		}
		again = append(again, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rebuild %s: %w", table, err)
	}
	stmts := []string{
		newDef,
		"INSERT INTO " + table + "_new SELECT * FROM " + table,
		"DROP TABLE " + table,
		"ALTER TABLE " + table + "_new RENAME TO " + table,
	}
	stmts = append(stmts, again...)
	stmts = append(stmts, extra)
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("rebuild %s: %w", table, err)
		}
	}
	var broken int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&broken); err != nil {
		return fmt.Errorf("rebuild %s: %w", table, err)
	}
	if broken > 0 {
		return fmt.Errorf("rebuild %s: %d rows break foreign keys", table, broken)
	}
	return nil
}

// SchemaVersion is the schema version this dkimd writes.
func SchemaVersion() int { return len(migrations) - 1 }

func migrate(ctx context.Context, db *sql.DB, now func() time.Time) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	applied INTEGER NOT NULL
) STRICT`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	for v := 1; v < len(migrations); v++ {
		if err := applyMigration(ctx, db, v, now); err != nil {
			return err
		}
	}
	var newest int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	if newest > SchemaVersion() {
		return fmt.Errorf("%w: version %d, this dkimd knows %d", ErrSchemaTooNew, newest, SchemaVersion())
	}
	return nil
}

// applyMigration applies migration v unless already applied. The check and
// the change share one BEGIN IMMEDIATE transaction, so two processes opening
// a fresh database at once apply it once.
func applyMigration(ctx context.Context, db *sql.DB, v int, now func() time.Time) error {
	var q interface {
		BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	} = db
	rebuild := rebuilds[v]
	if rebuild != nil {
		// PRAGMA foreign_keys does nothing inside a transaction, and a
		// DROP TABLE with them on would cascade: turn them off on one
		// connection for the migration and on again after.
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		defer func() {
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON"); err != nil {
				// Never hand a connection without foreign keys back to
				// the pool.
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
		q = conn
	}
	tx, err := q.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	if rebuild != nil {
		if err := rebuild(ctx, tx); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, v, now().UnixNano()); err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	return nil
}
