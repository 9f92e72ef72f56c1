package cli

import (
	"context"

	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// DefaultDataDir is the data directory when neither --data nor DKIMD_DATA
// names one.
const DefaultDataDir = "dkimd-data"

// dataFlags are the flags every command on the data directory takes.
type dataFlags struct {
	dir       *string
	masterKey *string
	asJSON    *bool
}

func addDataFlags(fs *flag.FlagSet, e *Env) dataFlags {
	def := e.getenv("DKIMD_DATA")
	if def == "" {
		def = DefaultDataDir
	}
	return dataFlags{
		dir:       fs.String("data", def, "data directory (default $DKIMD_DATA or ./"+DefaultDataDir+")"),
		masterKey: fs.String("master-key", "", "master key file (default DIR/master.key, or $"+keys.MasterKeyEnv+")"),
		asJSON:    fs.Bool("json", false, "print JSON"),
	}
}

// data is an open data directory: the database and the master key, behind
// the admin service.
type data struct {
	dir   string
	db    *sqlite.DB
	admin *admin.Service
}

func (d *data) Close() error { return d.db.Close() }

// openData opens (creating on first use) the data directory: DIR/dkimd.db
// and the master key, which lives outside the database (DIR/master.key with
// mode 0600, another file, or the environment).
func openData(ctx context.Context, e *Env, f dataFlags, log *slog.Logger) (*data, error) {
	dir := *f.dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	var mk *keys.MasterKey
	var err error
	switch {
	case *f.masterKey != "":
		mk, err = keys.LoadMasterKeyFile(*f.masterKey)
	case e.getenv(keys.MasterKeyEnv) != "":
		mk, err = keys.ParseMasterKey([]byte(e.getenv(keys.MasterKeyEnv)))
	default:
		var created bool
		mk, created, err = keys.LoadOrCreateMasterKey(filepath.Join(dir, "master.key"))
		if created {
			fmt.Fprintf(e.Stderr, "dkimd: created master key %s: back it up apart from the database; without it the private keys cannot be opened\n", filepath.Join(dir, "master.key"))
		}
	}
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "dkimd.db"), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	return &data{dir: dir, db: db, admin: &admin.Service{Store: db, Master: mk, Log: log}}, nil
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
