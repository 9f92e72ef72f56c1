package dataopen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// Why Open refuses a data directory, one sentinel per case; a
// *RefusedError wraps one of them.
var (
	// ErrMasterKeyMissing: the database holds data sealed under a master
	// key, and there is none.
	ErrMasterKeyMissing = errors.New("master key missing")
	// ErrMasterKeyForeign: the master key is not the one the database was
	// made with.
	ErrMasterKeyForeign = errors.New("master key does not match the database")
	// ErrDatabaseNew: the database is missing or empty while a master key
	// exists.
	ErrDatabaseNew = errors.New("database missing or empty beside a master key")
)

// RefusedError refuses a data directory: what is wrong and what to restore, in
// words for the administrator. It names files and flags, never key
// material. It wraps one of the sentinels above.
type RefusedError struct {
	kind error
	msg  string
}

func (e *RefusedError) Error() string { return e.msg }
func (e *RefusedError) Unwrap() error { return e.kind }

// keySource says where the master key comes from: a file (DIR/master.key
// or --master-key) or $DKIMD_MASTER_KEY.
type keySource struct {
	path    string // the file; "" for the environment
	flag    bool   // path came from --master-key
	envText string // the key's text, for the environment
}

func masterKeyFrom(o Options, dir datadir.Layout) keySource {
	switch {
	case o.MasterKeyFile != "":
		return keySource{path: o.MasterKeyFile, flag: true}
	case o.MasterKeyText != "":
		return keySource{envText: o.MasterKeyText}
	}
	return keySource{path: dir.MasterKey()}
}

// String names the source for messages.
func (s keySource) String() string {
	switch {
	case s.path == "":
		return "$" + keys.MasterKeyEnv
	case s.flag:
		return "--master-key " + s.path
	}
	return s.path
}

// load reads the master key; nil and no error when its file does not exist.
// A file that exists but cannot be used (mode, content) is an error as ever.
func (s keySource) load() (*keys.MasterKey, error) {
	if s.path == "" {
		mk, err := keys.ParseMasterKey([]byte(s.envText))
		if err != nil {
			return nil, fmt.Errorf("$%s: %w", keys.MasterKeyEnv, err)
		}
		return mk, nil
	}
	mk, err := keys.LoadMasterKeyFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return mk, err
}

// databaseAbsent tells whether there is no database to speak of: no file,
// or a file of zero bytes (SQLite writes the header of a new WAL database
// into the file itself, so a used database is never empty on disk). state
// says which, for messages.
func databaseAbsent(path string) (absent bool, state string, err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, "is missing", nil
	case err != nil:
		return false, "", fmt.Errorf("database: %w", err)
	case fi.Mode().IsRegular() && fi.Size() == 0:
		return true, "is empty (0 bytes)", nil
	}
	return false, "", nil
}

// gateOptions are what masterKeyGate needs to know beside the store.
type gateOptions struct {
	src    keySource
	dbPath string
	init   bool // --init
}

// masterKeyGate decides, on an open database, whether the master key mk
// (nil when its file does not exist) may be used with it, creating the key
// and recording its check value where that is safe:
//
//   - The database has a check value: mk must match it. Without mk: refused
//     (restore the key); never a new key beside it, not even with --init,
//     since every private key in the database was sealed under the old one.
//   - No check value (a database from before check values, or a new one):
//     with sealed private keys, mk must open one of them, then its check
//     value is recorded; without mk: refused as above. With data but no
//     private keys: mk is recorded; without mk, --init makes one.
//   - A new database (no check value, no domain, no account): without mk
//     this is a first start, a key is created and recorded; with mk it is
//     refused (a lost database beside its key looks just like this) unless
//     --init.
//
// Refusals change nothing.
func masterKeyGate(ctx context.Context, notice io.Writer, st store.Store, mk *keys.MasterKey, o gateOptions) (*keys.MasterKey, error) {
	check, err := st.MasterKeyCheck(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if check != nil {
		if mk == nil {
			return nil, missingKeyError(o, "was made with a master key (its check value is stored)")
		}
		ok, err := mk.MatchesCheckValue(check)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", o.dbPath, err)
		}
		if !ok {
			return nil, foreignKeyError(o)
		}
		return mk, nil
	}
	sealed, err := st.ListKeys(ctx, store.KeyFilter{})
	if err != nil {
		return nil, err
	}
	if len(sealed) > 0 {
		if mk == nil {
			return nil, missingKeyError(o, fmt.Sprintf("holds %d private key(s) sealed under a master key", len(sealed)))
		}
		opened, err := opensAny(ctx, st, mk, sealed)
		if err != nil {
			return nil, err
		}
		if !opened {
			return nil, foreignKeyError(o)
		}
		return mk, recordCheck(ctx, st, mk)
	}
	domains, err := st.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	accounts, err := st.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	isNew := len(domains) == 0 && len(accounts) == 0
	switch {
	case mk != nil && isNew && !o.init:
		return nil, newDatabaseError(o.dbPath, o.src, "holds no data (no domain, no account, no key)")
	case mk == nil && !isNew && !o.init:
		return nil, missingKeyError(o, "holds domains or accounts (but no private keys)")
	case mk == nil && o.src.path == "":
		// $DKIMD_MASTER_KEY is never missing; kept for safety.
		return nil, fmt.Errorf("%w: $%s", keys.ErrNoMasterKey, keys.MasterKeyEnv)
	case mk == nil:
		var created bool
		mk, created, err = keys.LoadOrCreateMasterKey(o.src.path)
		if err != nil {
			return nil, err
		}
		if created {
			fmt.Fprintf(notice, "dkimd: created master key %s: back it up apart from the database; without it the private keys cannot be opened\n", o.src.path)
		}
	}
	return mk, recordCheck(ctx, st, mk)
}

// opensAny tells whether mk opens any of the keys' sealed private keys.
// One is enough to know the key: AES-GCM does not open under another.
// Trying the others too copes with one damaged row.
func opensAny(ctx context.Context, st store.Store, mk *keys.MasterKey, ks []store.Key) (bool, error) {
	for _, k := range ks {
		blob, err := st.SealedKey(ctx, k.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		pt, err := mk.Open(blob, k.AssociatedData())
		clear(pt)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, keys.ErrSealed) {
			return false, err
		}
	}
	return false, nil
}

// recordCheck stores mk's check value. ErrConflict means another process
// recorded another key's value meanwhile: that is a foreign key too.
func recordCheck(ctx context.Context, st store.Store, mk *keys.MasterKey) error {
	err := st.SetMasterKeyCheck(ctx, mk.CheckValue())
	if errors.Is(err, store.ErrConflict) {
		return &RefusedError{kind: ErrMasterKeyForeign,
			msg: "another process recorded another master key for this database while this one started: check which master key each uses; nothing was changed"}
	}
	return err
}

func missingKeyError(o gateOptions, holds string) error {
	where := fmt.Sprintf("there is no file %s", o.src.path)
	if o.src.flag {
		where = fmt.Sprintf("the file given with --master-key, %s, does not exist", o.src.path)
	}
	return &RefusedError{kind: ErrMasterKeyMissing, msg: fmt.Sprintf(
		"the master key is missing: %s, but the database %s %s. "+
			"Restore the master key from your backup to %s (mode 0600), or give it with --master-key FILE or $%s. "+
			"Nothing was changed: a new master key would not open the private keys in this database. "+
			"If it is lost for good, so are the private keys sealed under it: move the database away to start a new installation.",
		where, o.dbPath, holds, o.src.path, keys.MasterKeyEnv)}
}

func foreignKeyError(o gateOptions) error {
	return &RefusedError{kind: ErrMasterKeyForeign, msg: fmt.Sprintf(
		"the master key from %s does not match the database %s: its private keys were sealed under another master key "+
			"(another installation's, or one replaced since). "+
			"Give the master key this database was made with (restore it from your backup). Nothing was changed.",
		o.src, o.dbPath)}
}

func newDatabaseError(dbPath string, src keySource, state string) error {
	return &RefusedError{kind: ErrDatabaseNew, msg: fmt.Sprintf(
		"the database %s %s, but a master key exists (%s): that looks like a lost or replaced database, not a first start. "+
			"Restore the database from your backup, or pass --init to start a new, empty installation with this master key deliberately. "+
			"Nothing was created.",
		dbPath, state, src)}
}
