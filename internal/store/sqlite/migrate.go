package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
	tx, err := db.BeginTx(ctx, nil)
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
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, v, now().UnixNano()); err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: %w", v, err)
	}
	return nil
}
