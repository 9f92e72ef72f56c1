package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dkimd/dkimd/internal/store"
)

// DefaultBusyTimeout is how long a writer waits for another (dkimd serve,
// the CLI) to finish before giving up with an error.
const DefaultBusyTimeout = 10 * time.Second

// ErrSchemaTooNew means the database was written by a newer dkimd: this one
// does not know its schema and refuses to touch it.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this dkimd")

// Options configure Open. The zero value is ready to use.
type Options struct {
	// Now is the clock for every stored time; nil means time.Now.
	Now func() time.Time
	// BusyTimeout is how long to wait for a lock another connection or
	// process holds; zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// MaxOpenConns caps the connection pool; zero means 8.
	MaxOpenConns int
}

// DB is a store.Store on one SQLite database file.
type DB struct {
	db    *sql.DB
	now   func() time.Time
	stmts *stmts
	// watch is the read cache, once CacheReads turned it on.
	watch atomic.Pointer[versionWatch]
}

var _ store.Store = (*DB)(nil)

// Open opens (creating it with mode 0600 if missing) the database at path,
// sets it up for concurrent use by several processes, and applies any
// migrations it lacks. Re-opening an up-to-date database changes nothing.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: unusable database path %q (no ?, # or file: URIs)", path)
	}
	// SQLite would create the file with the umask's mode; it holds password
	// hashes and sealed keys, so make it private first. The -wal and -shm
	// files SQLite creates take the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	// busy_timeout comes first so the other pragmas wait for locks too.
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate",
		path, busy.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	maxConns := opts.MaxOpenConns
	if maxConns <= 0 {
		maxConns = 8
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(min(maxConns, 2))
	d := &DB{db: db, now: opts.Now}
	if d.now == nil {
		d.now = time.Now
	}
	if err := d.checkPragmas(ctx, busy); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := migrate(ctx, db, d.now); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if d.stmts, err = prepareStmts(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return d, nil
}

// checkPragmas makes sure the settings the data's safety depends on took
// effect: a DSN typo would otherwise be silent.
func (d *DB) checkPragmas(ctx context.Context, patience time.Duration) error {
	conn, err := d.firstConn(ctx, patience)
	if err != nil {
		return err
	}
	defer conn.Close()
	var mode string
	var fk, sync int
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") || fk != 1 || sync != 2 {
		return fmt.Errorf("database settings did not take effect (journal_mode=%s foreign_keys=%d synchronous=%d)", mode, fk, sync)
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error { return errors.Join(d.stmts.close(), d.db.Close()) }

// Check runs SQLite's integrity check and the foreign key check, and makes
// sure every sealed key has its sealed private key, no sealed private key
// lacks its key, and no key in a PKCS#11 token has a copy in the database.
func (d *DB) Check(ctx context.Context) error {
	rows, err := d.db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("sqlite: integrity check: %w", err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: integrity check: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: integrity check: %w", err)
	}
	var n int
	if err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM pragma_foreign_key_check").Scan(&n); err != nil {
		return fmt.Errorf("sqlite: foreign key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d rows break foreign keys", n))
	}
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_keys k LEFT JOIN dkim_key_secrets s ON s.key_id = k.id WHERE k.backend = 'sealed' AND s.key_id IS NULL`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d keys have no sealed private key", n))
	}
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_key_secrets s LEFT JOIN dkim_keys k ON s.key_id = k.id WHERE k.id IS NULL`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d sealed private keys have no key", n))
	}
	// A key in a PKCS#11 token never has a copy in the database, and
	// always names where it is.
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_keys k JOIN dkim_key_secrets s ON s.key_id = k.id WHERE k.backend <> 'sealed'`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d PKCS#11 keys have a sealed private key in the database", n))
	}
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_keys WHERE backend = 'pkcs11' AND (pkcs11_token = '' OR pkcs11_label = '' OR pkcs11_id = '')`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d PKCS#11 keys do not say where they are", n))
	}
	if len(problems) > 0 {
		return fmt.Errorf("sqlite: database check failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// write runs fn in a BEGIN IMMEDIATE transaction: it holds the write lock
// from the start, so what fn reads stays true until it commits.
func (d *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction: one consistent snapshot that does not
// block writers (WAL).
func (d *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// stamp gives the clock's time as stored: Unix nanoseconds, UTC.
func (d *DB) stamp() int64 { return d.now().UnixNano() }

func fromStamp(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNullStamp(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromStamp(n.Int64)
}

func toNullStamp(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// firstConn opens a connection, waiting up to patience while another
// process holds the lock: a connection's set-up switches a new database to
// WAL, and SQLite answers SQLITE_BUSY to that switch at once, without its
// busy handler, while another process is making the same switch (several
// nodes or commands opening a fresh database together).
func (d *DB) firstConn(ctx context.Context, patience time.Duration) (*sql.Conn, error) {
	deadline := time.Now().Add(patience)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		conn, err := d.db.Conn(ctx)
		var e *sqlite.Error
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// isConstraint reports whether err is a SQLite constraint failure of the
// given extended code (sqlite3.SQLITE_CONSTRAINT_UNIQUE, …).
func isConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}

// dbErr wraps a database error that is not one of the store classes.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) ||
		errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) {
		return err
	}
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) || isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("%w: %s: %v", store.ErrExists, op, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
