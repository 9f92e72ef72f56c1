package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
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
	pkcs11    pkcs11Flags
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
		pkcs11:    addPKCS11Flags(fs),
	}
}

// data is an open data directory: the database and the master key, behind
// the admin service.
type data struct {
	dir   string
	db    *sqlite.DB
	admin *admin.Service
	token *pkcs11.Token // nil when no token is configured
}

func (d *data) Close() error {
	var err error
	if d.token != nil {
		err = d.token.Close()
	}
	return errors.Join(err, d.db.Close())
}

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
	// The token connects on first use: commands that need none of its
	// keys do not wait for it.
	tok, err := f.pkcs11.open(e)
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "dkimd.db"), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	d := &data{dir: dir, db: db, admin: &admin.Service{Store: db, Master: mk, Log: log}}
	if tok != nil {
		d.token, d.admin.Token = tok, tok
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
