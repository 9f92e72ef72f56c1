package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/dataopen"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/logtest"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// runEnv calls Main with the given environment and no standard input. It
// gives up after a while, so that a serve that starts where it should have
// refused fails the test instead of hanging it.
func runEnv(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb logtest.Buffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := Main(ctx, append([]string{"dkimd"}, args...), e)
	return code, out.String(), errb.String()
}

// runServeUntilServing runs serve until it logs that it serves, then
// stops it as a signal would, and gives its exit code and stderr.
func runServeUntilServing(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	var out, errb logtest.Buffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Main(ctx, append([]string{"dkimd"}, args...), e) }()
	for {
		select {
		case code := <-done:
			return code, errb.String()
		case <-time.After(20 * time.Millisecond):
			if strings.Contains(errb.String(), "msg=serving") {
				cancel()
				return <-done, errb.String()
			}
		}
	}
}

// serveArgs starts serve on loopback ports only.
var serveArgs = []string{"serve", "--listen-http", "127.0.0.1:0", "--listen-submission", "127.0.0.1:0",
	"--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0", "--hostname", "mail.test"}

// installation makes a data directory in use: a domain, an active key, a
// user and an admin account, sealed under DIR/master.key.
func installation(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"DKIMD_DATA": dir}
	for _, args := range [][]string{
		{"domain", "add", "example.com"},
		{"key", "generate", "--domain", "example.com", "--selector", "s1", "--algorithm", "ed25519"},
		{"key", "activate", "--domain", "example.com", "--selector", "s1", "--force"},
		{"user", "add", "--domain", "example.com", "--name", "relay", "--ip", "192.0.2.0/24"},
		{"account", "add", "root", "--role", "admin"},
	} {
		if code, _, errs := runEnv(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	return dir
}

// writeMasterKey writes a new master key file at path and returns it.
func writeMasterKey(t *testing.T, path string) *keys.MasterKey {
	t.Helper()
	mk, created, err := keys.LoadOrCreateMasterKey(path)
	if err != nil || !created {
		t.Fatalf("new master key %s: created %t, %v", path, created, err)
	}
	return mk
}

// storedCheck reads the database's check value without dkimd's gate.
func storedCheck(t *testing.T, dbPath string) []byte {
	t.Helper()
	db, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.MasterKeyCheck(context.Background())
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// accountNames lists the accounts in the database without dkimd's gate.
func accountNames(t *testing.T, dbPath string) []string {
	t.Helper()
	db, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	as, err := db.ListAccounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name)
	}
	return names
}

// forgetCheck makes the database look like one from before check values:
// migration 3 applied, no value recorded.
func forgetCheck(t *testing.T, dbPath string) {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM master_key_check`); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// dataCommands are commands that open the data directory, serve among
// them: every one is gated the same way (openData).
var dataCommands = [][]string{
	serveArgs,
	{"domain", "list"},
	{"domain", "add", "new.example"},
	{"key", "list"},
	{"key", "generate", "--domain", "example.com", "--selector", "s2", "--algorithm", "ed25519"},
	{"user", "list"},
	{"account", "list"},
	{"audit"},
	{"queue", "list"},
	{"policy", "explain", "--user", "relay", "--from", "a@example.com"},
}

// TestDataFirstStart: with neither a database nor a master key, dkimd makes
// both and records the key's check value; the next start makes nothing.
func TestDataFirstStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"DKIMD_DATA": dir}
	code, _, errs := runEnv(t, env, "domain", "list")
	if code != 0 || !strings.Contains(errs, "created master key "+filepath.Join(dir, "master.key")) {
		t.Fatalf("first start: exit %d: %s", code, errs)
	}
	mk, err := keys.LoadMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if got := storedCheck(t, filepath.Join(dir, "dkimd.db")); !bytes.Equal(got, mk.CheckValue()) {
		t.Errorf("stored check value %x, want the new key's %x", got, mk.CheckValue())
	}
	key := readFile(t, filepath.Join(dir, "master.key"))
	code, _, errs = runEnv(t, env, "domain", "add", "example.com")
	if code != 0 || strings.Contains(errs, "created") {
		t.Errorf("second start: exit %d: %s", code, errs)
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "master.key")), key) {
		t.Error("the master key file changed")
	}
}

// TestDataMasterKeyMissing: a database in use without its master key is
// refused by every command, serve included, with a message that says what
// is missing, where it was looked for and to restore it; no key is made and
// nothing in the database changes, not even with --init. Before this,
// dkimd made a new master key and ran, deferring every signed message.
func TestDataMasterKeyMissing(t *testing.T) {
	dir := installation(t)
	keyPath, dbPath := filepath.Join(dir, "master.key"), filepath.Join(dir, "dkimd.db")
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	accounts := accountNames(t, dbPath)
	check := storedCheck(t, dbPath)
	env := map[string]string{"DKIMD_DATA": dir}
	for _, args := range append(slices.Clip(dataCommands), []string{"domain", "list", "--init"}) {
		code, out, errs := runEnv(t, env, args...)
		if code != exitFailure {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitFailure, errs)
		}
		for _, want := range []string{"master key is missing", "there is no file " + keyPath, "Restore the master key from your backup", "$DKIMD_MASTER_KEY", "Nothing was changed"} {
			if !strings.Contains(errs, want) {
				t.Errorf("%v: message lacks %q:\n%s", args, want, errs)
			}
		}
		if out != "" || strings.Contains(errs, "First start") {
			t.Errorf("%v: printed %q", args, out)
		}
		if exists(keyPath) {
			t.Fatalf("%v made a new master key", args)
		}
	}
	if got := accountNames(t, dbPath); strings.Join(got, ",") != strings.Join(accounts, ",") {
		t.Errorf("accounts now %v, were %v", got, accounts)
	}
	if !bytes.Equal(storedCheck(t, dbPath), check) {
		t.Error("the check value changed")
	}

	// Given elsewhere: the message names that file.
	elsewhere := filepath.Join(t.TempDir(), "backup.key")
	code, _, errs := runEnv(t, env, "key", "list", "--master-key", elsewhere)
	if code != exitFailure || !strings.Contains(errs, "the file given with --master-key, "+elsewhere+", does not exist") {
		t.Errorf("--master-key FILE missing: exit %d: %s", code, errs)
	}
	if exists(elsewhere) {
		t.Error("--master-key FILE was created beside a database in use")
	}
}

// TestDataMasterKeyForeign: another installation's master key, from the
// file, the flag or the environment, is refused and left as it is, also
// with --init.
func TestDataMasterKeyForeign(t *testing.T) {
	dir := installation(t)
	keyPath := filepath.Join(dir, "master.key")
	ours := readFile(t, keyPath)
	foreignPath := filepath.Join(t.TempDir(), "other.key")
	writeMasterKey(t, foreignPath)
	foreign := readFile(t, foreignPath)

	type setup struct {
		name string
		env  map[string]string
		args []string
	}
	cases := []setup{
		{"--master-key", map[string]string{"DKIMD_DATA": dir}, []string{"--master-key", foreignPath}},
		{"$DKIMD_MASTER_KEY", map[string]string{"DKIMD_DATA": dir, "DKIMD_MASTER_KEY": string(foreign)}, nil},
		{"--init", map[string]string{"DKIMD_DATA": dir}, []string{"--master-key", foreignPath, "--init"}},
	}
	for _, c := range cases {
		for _, cmd := range dataCommands {
			args := append(append([]string(nil), cmd...), c.args...)
			code, _, errs := runEnv(t, c.env, args...)
			if code != exitFailure || !strings.Contains(errs, "does not match the database") ||
				!strings.Contains(errs, "restore it from your backup") {
				t.Errorf("%s %v: exit %d: %s", c.name, cmd, code, errs)
			}
			if strings.Contains(errs, strings.TrimSpace(string(foreign))) {
				t.Fatalf("%s %v: the message shows the key", c.name, cmd)
			}
		}
	}
	// The file in the data directory itself replaced by another.
	if err := os.WriteFile(keyPath, foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runEnv(t, map[string]string{"DKIMD_DATA": dir}, serveArgs...)
	if code != exitFailure || !strings.Contains(errs, "the master key from "+keyPath+" does not match") {
		t.Errorf("serve with a replaced master.key: exit %d: %s", code, errs)
	}
	if !bytes.Equal(readFile(t, keyPath), foreign) || !bytes.Equal(readFile(t, foreignPath), foreign) {
		t.Error("a master key file was overwritten")
	}
	// And the right one still works.
	if err := os.WriteFile(keyPath, ours, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runEnv(t, map[string]string{"DKIMD_DATA": dir}, "key", "list"); code != 0 {
		t.Errorf("own key back: exit %d: %s", code, errs)
	}
}

// TestDataDatabaseLost: a database that is missing, zero bytes or holds
// nothing, beside an existing master key, is refused (no new admin, no
// schema written) unless --init says to start over; --init keeps the
// master key file as it is.
func TestDataDatabaseLost(t *testing.T) {
	for _, c := range []struct {
		name    string
		lose    func(t *testing.T, dbPath string)
		message string
	}{
		{"missing", func(t *testing.T, dbPath string) {
			if err := os.Remove(dbPath); err != nil {
				t.Fatal(err)
			}
		}, "is missing"},
		{"zero bytes", func(t *testing.T, dbPath string) {
			if err := os.Truncate(dbPath, 0); err != nil {
				t.Fatal(err)
			}
		}, "is empty (0 bytes)"},
		{"schema only", func(t *testing.T, dbPath string) {
			if err := os.Remove(dbPath); err != nil {
				t.Fatal(err)
			}
			db, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, "holds no data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := installation(t)
			keyPath, dbPath := filepath.Join(dir, "master.key"), filepath.Join(dir, "dkimd.db")
			key := readFile(t, keyPath)
			for _, f := range []string{"-wal", "-shm"} {
				os.Remove(dbPath + f)
			}
			c.lose(t, dbPath)
			before, _ := os.Stat(dbPath)
			env := map[string]string{"DKIMD_DATA": dir}
			for _, args := range dataCommands {
				code, _, errs := runEnv(t, env, args...)
				if code != exitFailure {
					t.Errorf("%v: exit %d: %s", args, code, errs)
				}
				for _, want := range []string{"the database " + dbPath + " " + c.message, "a master key exists (" + keyPath + ")",
					"Restore the database from your backup", "--init"} {
					if !strings.Contains(errs, want) {
						t.Errorf("%v: message lacks %q:\n%s", args, want, errs)
					}
				}
				if strings.Contains(errs, "First start") {
					t.Fatalf("%v made an admin account", args)
				}
			}
			after, _ := os.Stat(dbPath)
			if (before == nil) != (after == nil) || (before != nil && before.Size() != after.Size()) {
				t.Errorf("the database changed: %v, was %v", after, before)
			}

			// Deliberately: a new installation with the same master key.
			// serve stops once it serves (every listener opens before the
			// first account is made, so a taken port would stop it too
			// early).
			code, errs := runServeUntilServing(t, env, append(slices.Clone(serveArgs), "--init")...)
			if !strings.Contains(errs, "First start") {
				t.Errorf("serve --init: exit %d, no first start: %s", code, errs)
			}
			if !bytes.Equal(readFile(t, keyPath), key) {
				t.Error("--init replaced the master key file")
			}
			mk, err := keys.ParseMasterKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if got := storedCheck(t, dbPath); !bytes.Equal(got, mk.CheckValue()) {
				t.Errorf("after --init the check value is %x, want the key's", got)
			}
			if code, _, errs := runEnv(t, env, "domain", "list"); code != 0 {
				t.Errorf("after --init: exit %d: %s", code, errs)
			}
		})
	}
}

// TestDataUpgrade: a database from before check values is checked against
// its sealed private keys once, then gets the check value; one without
// private keys takes the master key it is given.
func TestDataUpgrade(t *testing.T) {
	t.Run("right key", func(t *testing.T) {
		dir := installation(t)
		dbPath := filepath.Join(dir, "dkimd.db")
		forgetCheck(t, dbPath)
		if code, _, errs := runEnv(t, map[string]string{"DKIMD_DATA": dir}, "key", "list"); code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		mk, err := keys.LoadMasterKeyFile(filepath.Join(dir, "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		if got := storedCheck(t, dbPath); !bytes.Equal(got, mk.CheckValue()) {
			t.Errorf("check value %x, want the key's", got)
		}
	})
	t.Run("foreign key", func(t *testing.T) {
		dir := installation(t)
		dbPath := filepath.Join(dir, "dkimd.db")
		forgetCheck(t, dbPath)
		foreign := filepath.Join(t.TempDir(), "other.key")
		writeMasterKey(t, foreign)
		for _, args := range [][]string{{"key", "list"}, {"domain", "list", "--init"}} {
			code, _, errs := runEnv(t, map[string]string{"DKIMD_DATA": dir}, append(args, "--master-key", foreign)...)
			if code != exitFailure || !strings.Contains(errs, "does not match the database") {
				t.Errorf("%v: exit %d: %s", args, code, errs)
			}
		}
		if got := storedCheck(t, dbPath); got != nil {
			t.Errorf("a foreign key's check value was recorded: %x", got)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		dir := installation(t)
		dbPath, keyPath := filepath.Join(dir, "dkimd.db"), filepath.Join(dir, "master.key")
		forgetCheck(t, dbPath)
		os.Remove(keyPath)
		for _, args := range [][]string{{"key", "list"}, {"key", "list", "--init"}} {
			code, _, errs := runEnv(t, map[string]string{"DKIMD_DATA": dir}, args...)
			if code != exitFailure || !strings.Contains(errs, "master key is missing") || !strings.Contains(errs, "holds 1 private key(s) sealed") {
				t.Errorf("%v: exit %d: %s", args, code, errs)
			}
		}
		if exists(keyPath) || storedCheck(t, dbPath) != nil {
			t.Error("a master key was made")
		}
	})
	t.Run("no private keys", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		env := map[string]string{"DKIMD_DATA": dir}
		if code, _, errs := runEnv(t, env, "domain", "add", "example.com"); code != 0 {
			t.Fatal(errs)
		}
		dbPath, keyPath := filepath.Join(dir, "dkimd.db"), filepath.Join(dir, "master.key")
		forgetCheck(t, dbPath)
		os.Remove(keyPath)
		code, _, errs := runEnv(t, env, "domain", "list")
		if code != exitFailure || !strings.Contains(errs, "master key is missing") || !strings.Contains(errs, "holds domains or accounts (but no private keys)") {
			t.Errorf("without --init: exit %d: %s", code, errs)
		}
		if exists(keyPath) {
			t.Fatal("a master key was made without --init")
		}
		code, _, errs = runEnv(t, env, "domain", "list", "--init")
		if code != 0 || !strings.Contains(errs, "created master key") {
			t.Fatalf("--init: exit %d: %s", code, errs)
		}
		mk, err := keys.LoadMasterKeyFile(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if got := storedCheck(t, dbPath); !bytes.Equal(got, mk.CheckValue()) {
			t.Errorf("check value %x, want the new key's", got)
		}
		// A database without private keys takes the key it is given.
		forgetCheck(t, dbPath)
		other := filepath.Join(t.TempDir(), "other.key")
		otherKey := writeMasterKey(t, other)
		if code, _, errs := runEnv(t, env, "domain", "list", "--master-key", other); code != 0 {
			t.Fatalf("another key, no private keys: exit %d: %s", code, errs)
		}
		if got := storedCheck(t, dbPath); !bytes.Equal(got, otherKey.CheckValue()) {
			t.Errorf("check value %x, want the given key's", got)
		}
	})
}

// TestDataEnvKeyNewInstallation: a master key in $DKIMD_MASTER_KEY and no
// database is refused (a wrong --data looks just like it) until --init;
// no master.key file is made for a key given in the environment.
func TestDataEnvKeyNewInstallation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	text := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, keys.MasterKeySize))
	env := map[string]string{"DKIMD_DATA": dir, "DKIMD_MASTER_KEY": text}
	code, _, errs := runEnv(t, env, "domain", "list")
	if code != exitFailure || !strings.Contains(errs, "a master key exists ($DKIMD_MASTER_KEY)") || strings.Contains(errs, text) {
		t.Errorf("exit %d: %s", code, errs)
	}
	if exists(dir) {
		t.Error("the refused data directory was created")
	}
	if code, _, errs := runEnv(t, env, "domain", "add", "example.com", "--init"); code != 0 {
		t.Fatalf("--init: exit %d: %s", code, errs)
	}
	if exists(filepath.Join(dir, "master.key")) {
		t.Error("a master.key file was made beside a key from the environment")
	}
	if code, out, errs := runEnv(t, env, "domain", "list"); code != 0 || !strings.Contains(out, "example.com") {
		t.Errorf("after --init: exit %d: %s %s", code, out, errs)
	}
}

// TestOpenDataErrorKinds: each refusal is a *dataopen.RefusedError of its own class.
func TestOpenDataErrorKinds(t *testing.T) {
	ctx := context.Background()
	open := func(dir, masterKey string, init bool) error {
		df := dataFlags{dir: &dir, masterKey: &masterKey, init: &init, asJSON: new(bool)}
		d, err := openData(ctx, &Env{Stderr: io.Discard, Getenv: func(string) string { return "" }}, df, nil)
		if err == nil {
			d.Close()
		}
		return err
	}
	dir := installation(t)
	foreign := filepath.Join(t.TempDir(), "other.key")
	writeMasterKey(t, foreign)
	if err := open(dir, "", false); err != nil {
		t.Fatalf("own key: %v", err)
	}
	var de *dataopen.RefusedError
	if err := open(dir, foreign, false); !errors.Is(err, dataopen.ErrMasterKeyForeign) || !errors.As(err, &de) {
		t.Errorf("foreign key: %v", err)
	}
	if err := open(dir, filepath.Join(t.TempDir(), "none.key"), false); !errors.Is(err, dataopen.ErrMasterKeyMissing) {
		t.Errorf("missing key: %v", err)
	}
	if err := open(filepath.Join(t.TempDir(), "new"), foreign, false); !errors.Is(err, dataopen.ErrDatabaseNew) {
		t.Errorf("no database beside a key: %v", err)
	}
}

// TestConfigRefusesInit: --init is for one deliberate start, not a
// setting repeated on every start.
func TestConfigRefusesInit(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "dkimd.conf")
	if err := os.WriteFile(conf, []byte("init = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	code, _, errs := runEnv(t, map[string]string{"DKIMD_DATA": dir}, append(slices.Clone(serveArgs), "--config", conf)...)
	if code != exitUsage || !strings.Contains(errs, "init is not a setting") {
		t.Errorf("exit %d: %s", code, errs)
	}
	if exists(dir) {
		t.Error("the data directory was created")
	}
}
