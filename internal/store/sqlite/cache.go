package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"

	"github.com/dkimd/dkimd/internal/store"
)

// CacheReads turns on the read cache of the per-message reads (UserByIP,
// GetUser, GetDomain, ActiveKeys, GetKey: on a database of 100 IP users
// they cost the relay about 170 µs a message) for the life of ctx. For
// serve; short-lived commands read the database each time.
//
// A cached read is used only while the database is as it was when it was
// read: before each one (or once for the reads of a message, under
// store.OneCheck) the cache asks SQLite for its data version (PRAGMA
// data_version, about 5 µs) on a connection of its own that never writes,
// and drops everything when it moved on. The data version changes at every
// commit of any other connection, in this process or another (dkimd key
// revoke run beside serve), so a change is seen by the very next message,
// as without the cache. Nothing else in serve writes to the database for each message
// (the queue is in files), so the cache stays warm under load.
func (d *DB) CacheReads(ctx context.Context, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &versionWatch{db: d.db, log: log, cache: &store.ReadCache{}}
	d.watch.Store(w)
	context.AfterFunc(ctx, func() {
		d.watch.CompareAndSwap(w, nil)
		w.close()
	})
}

// versionWatch is the cache with the connection it reads the data version
// on.
type versionWatch struct {
	db    *sql.DB
	log   *slog.Logger
	cache *store.ReadCache

	mu      sync.Mutex
	conn    *sql.Conn // nil until the first check, and after a failure
	version int64
	closed  bool
}

// check drops the cache if the database changed since the last check. It
// fails when the data version cannot be read; the cache is then off until
// a check succeeds.
func (w *versionWatch) check(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return sql.ErrConnDone
	}
	v, err := w.read(ctx)
	if err != nil {
		if w.cache.Live() {
			w.log.Warn("store_cache_off", "err", err.Error(), "detail", "every read goes to the database until the data version can be read again")
		}
		w.cache.SetLive(false)
		if w.conn != nil {
			w.conn.Close()
			w.conn = nil
		}
		return err
	}
	switch {
	case !w.cache.Live():
		w.cache.SetLive(true) // starts empty
	case v != w.version:
		w.cache.Invalidate()
	}
	w.version = v
	return nil
}

func (w *versionWatch) read(ctx context.Context) (int64, error) {
	if w.conn == nil {
		c, err := w.db.Conn(ctx)
		if err != nil {
			return 0, err
		}
		w.conn = c
	}
	var v int64
	err := w.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v)
	return v, err
}

func (w *versionWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.cache.SetLive(false)
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// cached runs read through the read cache, if CacheReads turned it on and
// the database's data version can be read. The version is read before
// every read, or once for all the reads of a context from store.OneCheck.
func cached[T any](ctx context.Context, d *DB, key string, clone func(T) T, read func() (T, error)) (T, error) {
	w := d.watch.Load()
	if w == nil {
		return read()
	}
	if store.CheckDue(ctx, w) && w.check(ctx) != nil {
		return read()
	}
	return store.Cached(w.cache, key, clone, read)
}
