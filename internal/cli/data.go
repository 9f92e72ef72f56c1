package cli

import (
	"context"
	"errors"
	"flag"
	"log/slog"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/dataopen"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/server"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/postgres"
)

// DefaultDataDir is the data directory when neither --data nor DKIMD_DATA
// names one.
const DefaultDataDir = "dkimd-data"

// dataFlags are the flags every command on the data directory takes.
type dataFlags struct {
	dir       *string
	database  *string
	masterKey *string
	init      *bool
	asJSON    *bool
	pkcs11    pkcs11Flags
}

func addDataFlags(fs *flag.FlagSet, e *Env) dataFlags {
	def := e.getenv("DKIMD_DATA")
	if def == "" {
		def = DefaultDataDir
	}
	return dataFlags{
		dir: fs.String("data", def, "data directory (default $DKIMD_DATA or ./"+DefaultDataDir+")"),
		database: fs.String("database", e.getenv("DKIMD_DATABASE"),
			"shared PostgreSQL database, postgres://USER@HOST:PORT/DBNAME?sslmode=... (default $DKIMD_DATABASE; "+
				"empty: SQLite in the data directory)"),
		masterKey: fs.String("master-key", "", "master key file (default DIR/"+datadir.MasterKeyFile+", or $"+keys.MasterKeyEnv+")"),
		init: fs.Bool("init", false, "create the database or the master key where one is missing although the other exists "+
			"(a new installation with a given master key; never replaces either)"),
		asJSON: fs.Bool("json", false, "print JSON"),
		pkcs11: addPKCS11Flags(fs),
	}
}

// data is an open data directory: the database and the master key, behind
// the admin service.
type data struct {
	dir    datadir.Layout
	db     store.Store
	pg     *postgres.DB // the same database when it is PostgreSQL, else nil
	master *keys.MasterKey
	// admin is the service as the admin commands use it: no DNS checker,
	// the default lifecycle settings, no queue (see services).
	admin *admin.Service
	token *pkcs11.Token // nil when no token is configured
}

// services builds the lifecycle and admin services on the data directory
// (server.Services).
func (d *data) services(w server.Wiring) (*admin.Service, *lifecycle.Service, error) {
	return server.Services(&server.Data{Dir: d.dir, Store: d.db, PG: d.pg, Master: d.master, Token: d.token}, w)
}

func (d *data) Close() error {
	var err error
	if d.token != nil {
		err = d.token.Close()
	}
	return errors.Join(err, d.db.Close())
}

// openData opens the data directory as the data flags say (see
// dataopen.Open), and the admin service as the admin commands use it.
func openData(ctx context.Context, e *Env, f dataFlags, log *slog.Logger) (*data, error) {
	o := dataopen.Options{Dir: *f.dir, MasterKeyText: e.getenv(keys.MasterKeyEnv), Init: *f.init, Notice: e.Stderr,
		Token: func() (*pkcs11.Token, error) { return f.pkcs11.open(e) }}
	if f.masterKey != nil {
		o.MasterKeyFile = *f.masterKey
	}
	if f.database != nil && *f.database != "" {
		if !postgres.IsURL(*f.database) {
			return nil, usagef("--database: want a postgres:// URL (SQLite lives in the data directory, --data)")
		}
		o.Database = *f.database
	}
	od, err := dataopen.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	d := &data{dir: od.Dir, db: od.Store, pg: od.PG, master: od.Master, token: od.Token}
	if d.admin, _, err = d.services(server.Wiring{Log: log}); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

// withData parses flags, opens the data directory, and runs fn.
func withData(ctx context.Context, e *Env, fs *flag.FlagSet, df dataFlags, args []string, fn func(d *data, pos []string) error) error {
	pos, err := parseFlags(fs, e, args)
	if err != nil {
		return err
	}
	d, err := openData(ctx, e, df, nil)
	if err != nil {
		return err
	}
	err = fn(d, pos)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// subcommand dispatches "dkimd NOUN VERB ...".
func subcommand(ctx context.Context, e *Env, noun string, args []string, verbs map[string]func(context.Context, *Env, []string) error) error {
	if len(args) == 0 || verbs[args[0]] == nil {
		names := make([]string, 0, len(verbs))
		for v := range verbs {
			names = append(names, v)
		}
		return usagef("usage: dkimd %s %s ...", noun, joinSorted(names, "|"))
	}
	return verbs[args[0]](ctx, e, args[1:])
}
