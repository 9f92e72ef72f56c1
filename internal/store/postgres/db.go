package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/dkimd/dkimd/internal/store"
)

// ErrSchemaTooNew means the database was written by a newer dkimd: this one
// does not know its schema and refuses to touch it.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this dkimd")

// Advisory lock keys: one 64-bit space shared by every client of the
// database, so dkimd's keys start with "dkim" to stay clear of others.
const (
	lockMigrate int64 = 0x646b696d_00000001 // applying migrations
	lockWrite   int64 = 0x646b696d_00000002 // every store write transaction
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// Now is the clock for every stored time; nil means time.Now.
	Now func() time.Time
	// MaxConns caps the connection pool; zero means 16.
	MaxConns int
}

// DB is a store.Store on a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	// lazy is a pool whose commits do not wait for the disk
	// (synchronous_commit off), for writes whose loss in a crash of
	// PostgreSQL costs at most a duplicate delivery or a count: a
	// deliverer's lease changes and outcomes, and the shared counters.
	// Enqueue and every store write use pool, which waits.
	lazy *pgxpool.Pool
	db   *sql.DB
	now  func() time.Time
	// cache is the read cache, once CacheReads turned it on.
	cache atomic.Pointer[store.ReadCache]
}

var _ store.Store = (*DB)(nil)

// IsURL reports whether s names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://user@host/dbname?...,
// any form pgx takes), and applies any migrations it lacks, once even when
// several nodes start together. Re-opening an up-to-date database changes
// nothing. Errors never carry the URL's password.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors quote the connection string, password and all.
		return nil, errors.New("postgres: unusable database URL (want postgres://user@host:port/dbname)")
	}
	cfg.MaxConns = int32(opts.MaxConns)
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	// A statement never waits forever on a lock another node holds, and an
	// idle transaction never pins a lock (lease renewals, migrations).
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "60000"
	// 250 is answered only after the commit is on disk.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	lazyCfg := cfg.Copy()
	lazyCfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	lazyCfg.MinConns = 0
	lazyCfg.MaxConns = max(cfg.MaxConns/2, 4)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	lazy, err := pgxpool.NewWithConfig(ctx, lazyCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	d := &DB{pool: pool, lazy: lazy, db: stdlib.OpenDBFromPool(pool), now: opts.Now}
	if d.now == nil {
		d.now = time.Now
	}
	if err := migrate(ctx, pool, d.now); err != nil {
		d.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return d, nil
}

// Pool gives the connection pool, for the parts of dkimd that share the
// database (the queue, sessions, limits, leader election).
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Close closes the database.
func (d *DB) Close() error {
	err := d.db.Close()
	d.pool.Close()
	d.lazy.Close()
	return err
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Check makes sure every key has its sealed private key and no sealed key
// lacks its key; PostgreSQL keeps its own integrity (foreign keys are never
// off), and amcheck is for its administrator.
func (d *DB) Check(ctx context.Context) error {
	var problems []string
	var n int
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_keys k LEFT JOIN dkim_key_secrets s ON s.key_id = k.id WHERE k.backend = 'sealed' AND s.key_id IS NULL`).Scan(&n); err != nil {
		return fmt.Errorf("postgres: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d keys have no sealed private key", n))
	}
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_key_secrets s LEFT JOIN dkim_keys k ON s.key_id = k.id WHERE k.id IS NULL`).Scan(&n); err != nil {
		return fmt.Errorf("postgres: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d sealed private keys have no key", n))
	}
	// A key in a PKCS#11 token never has a copy in the database, and
	// always names where it is.
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_keys k JOIN dkim_key_secrets s ON s.key_id = k.id WHERE k.backend <> 'sealed'`).Scan(&n); err != nil {
		return fmt.Errorf("postgres: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d PKCS#11 keys have a sealed private key in the database", n))
	}
	if err := d.db.QueryRowContext(ctx,
		`SELECT count(*) FROM dkim_keys WHERE backend = 'pkcs11' AND (pkcs11_token = '' OR pkcs11_label = '' OR pkcs11_id = '')`).Scan(&n); err != nil {
		return fmt.Errorf("postgres: key check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("%d PKCS#11 keys do not say where they are", n))
	}
	if len(problems) > 0 {
		return fmt.Errorf("postgres: database check failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// write runs fn in a transaction that first takes the cluster-wide write
// lock: what fn reads stays true until it commits (see the package doc).
func (d *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockWrite); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("postgres: write lock: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	// Every node's read cache goes when this commits (CacheReads).
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, '')`, storeChannel); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("postgres: notify: %w", err)
	}
	err = tx.Commit()
	// This node's at once, whether the commit is known to have happened
	// or not.
	d.cache.Load().Invalidate()
	if err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// read runs fn in a read-only repeatable-read transaction: one consistent
// snapshot that does not wait for writers.
func (d *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// bind appends v to args and gives its placeholder ($n).
func bind(args *[]any, v any) string {
	*args = append(*args, v)
	return fmt.Sprintf("$%d", len(*args))
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

// PostgreSQL error codes (Appendix A of its manual).
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// isCode reports whether err is a PostgreSQL error with that SQLSTATE.
func isCode(err error, code string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == code
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
	if isCode(err, codeUniqueViolation) {
		return fmt.Errorf("%w: %s: %v", store.ErrExists, op, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}
