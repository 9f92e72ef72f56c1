package dataopen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/postgres"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// Data is an open data directory: the database and the master key, and
// the token when one is configured. Close closes the token and the
// database.
type Data struct {
	// Dir names the files of the data directory.
	Dir datadir.Layout
	// Store is the database.
	Store store.Store
	// PG is the same database when it is PostgreSQL, else nil.
	PG *postgres.DB
	// Master is the master key, past the gate.
	Master *keys.MasterKey
	// Token is the PKCS#11 token; nil when none is configured.
	Token *pkcs11.Token
}

// Close closes the token and the database.
func (d *Data) Close() error {
	var err error
	if d.Token != nil {
		err = d.Token.Close()
	}
	return errors.Join(err, d.Store.Close())
}

// Options say which data directory Open opens and with which master key.
type Options struct {
	// Dir is the data directory's root (--data); "" is the current
	// directory.
	Dir string
	// Database is the URL of a shared PostgreSQL database (--database);
	// "" means SQLite in Dir/dkimd.db.
	Database string
	// MasterKeyFile is the master key's file (--master-key); "" means
	// MasterKeyText when that is set, else Dir/master.key.
	MasterKeyFile string
	// MasterKeyText is the master key's text from $DKIMD_MASTER_KEY; ""
	// means none.
	MasterKeyText string
	// Init allows a new master key beside data, or a new database beside
	// a master key (--init).
	Init bool
	// Token opens the PKCS#11 token; nil means none is configured.
	Token func() (*pkcs11.Token, error)
	// Notice gets the line that says a master key file was created; nil
	// discards it.
	Notice io.Writer
}

// ErrNotPostgres: Options.Database is not a postgres:// URL.
var ErrNotPostgres = errors.New("not a PostgreSQL URL")

// Open opens the data directory: DIR/dkimd.db and the master key, which
// lives outside the database (DIR/master.key with mode 0600, another file,
// or the environment). The database keeps the master key's check value, so
// that a missing or foreign master key, or a database lost beside its
// master key, is refused here with a *RefusedError, changing nothing, rather
// than starting with keys that do not open (mail deferred with 451) or a
// new, empty installation. Both are created only on a first start (neither
// exists), or with --init (see masterKeyGate). The PKCS#11 token (Options.Token) is
// opened only for SQLite, as ever, after the master key is read..
func Open(ctx context.Context, o Options) (*Data, error) {
	if o.Notice == nil {
		o.Notice = io.Discard
	}
	if o.Database != "" {
		return openShared(ctx, o)
	}
	dir := datadir.New(o.Dir)
	dbPath := dir.Database()
	src := masterKeyFrom(o, dir)
	mk, err := src.load()
	if err != nil {
		return nil, err
	}
	// The token connects on first use: commands that need none of its
	// keys do not wait for it.
	var tok *pkcs11.Token
	if o.Token != nil {
		if tok, err = o.Token(); err != nil {
			return nil, err
		}
	}
	ok := false
	defer func() {
		if !ok && tok != nil {
			tok.Close()
		}
	}()
	dbAbsent, dbState, err := databaseAbsent(dbPath)
	if err != nil {
		return nil, err
	}
	if dbAbsent && mk != nil && !o.Init {
		// Refused before anything is written: the database stays absent
		// (or zero bytes) for the administrator to restore.
		return nil, newDatabaseError(dbPath, src, dbState)
	}
	if err := dir.MakeRoot(); err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	mk, err = masterKeyGate(ctx, o.Notice, db, mk, gateOptions{src: src, dbPath: dbPath, init: o.Init})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	ok = true
	return &Data{Dir: dir, Store: db, Master: mk, Token: tok}, nil
}

// openShared opens the shared PostgreSQL database named by --database, with
// the master key from --master-key, $DKIMD_MASTER_KEY or DIR/master.key:
// the same key on every node, kept outside the database. The data
// directory holds nothing else a node needs but its TLS files. A database
// without dkimd's data beside an existing master key is refused as for
// SQLite (--init to start a cluster with a key made beforehand).
func openShared(ctx context.Context, o Options) (*Data, error) {
	if !postgres.IsURL(o.Database) {
		return nil, fmt.Errorf("%w: --database: want a postgres:// URL (SQLite lives in the data directory, --data)", ErrNotPostgres)
	}
	dir := datadir.New(o.Dir)
	src := masterKeyFrom(o, dir)
	mk, err := src.load()
	if err != nil {
		return nil, err
	}
	if mk == nil && src.path != "" {
		// A first start makes the master key here; the directory must exist.
		if err := dir.MakeRoot(); err != nil {
			return nil, err
		}
	}
	db, err := postgres.Open(ctx, o.Database, postgres.Options{})
	if err != nil {
		return nil, err
	}
	mk, err = masterKeyGate(ctx, o.Notice, db, mk, gateOptions{src: src, dbPath: RedactURL(o.Database), init: o.Init})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return &Data{Dir: dir, Store: db, PG: db, Master: mk}, nil
}

// RedactURL gives a database URL fit for messages: without its password.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(--database)"
	}
	return u.Redacted()
}
