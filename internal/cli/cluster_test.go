package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/logtest"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/postgres"
	"github.com/dkimd/dkimd/internal/store/postgres/pgtest"
)

// pg is this package's throwaway PostgreSQL server, started by the first
// test that needs it.
var pg = pgtest.New(pgtest.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Close(); err != nil {
		println("pgtest:", err.Error())
	}
	os.Exit(code)
}

// masterKeyText gives a new master key as $DKIMD_MASTER_KEY holds it.
func masterKeyText(t *testing.T) string {
	t.Helper()
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(raw[:])
}

// TestSharedDatabase runs admin commands on two "nodes" (two data
// directories) sharing one PostgreSQL database and one master key: what
// one writes the other reads, a node with another master key is refused,
// and an empty database beside an existing key wants --init.
func TestSharedDatabase(t *testing.T) {
	url := pg.Database(t)
	mk := masterKeyText(t)
	node := func(name string) map[string]string {
		return map[string]string{"DKIMD_DATA": filepath.Join(t.TempDir(), name), "DKIMD_DATABASE": url, "DKIMD_MASTER_KEY": mk}
	}
	a, b := node("a"), node("b")

	// A cluster started with a master key made beforehand: the empty
	// database is refused until --init says it is deliberate.
	if code, _, errs := runEnv(t, a, "domain", "add", "example.com"); code == 0 || !strings.Contains(errs, "--init") {
		t.Fatalf("first command on an empty database with a key: exit %d: %s", code, errs)
	}
	if code, _, errs := runEnv(t, a, "domain", "add", "example.com", "--init"); code != 0 {
		t.Fatalf("domain add --init: exit %d: %s", code, errs)
	}
	for _, args := range [][]string{
		{"key", "generate", "--domain", "example.com", "--selector", "s1", "--algorithm", "ed25519"},
		{"key", "activate", "--domain", "example.com", "--selector", "s1", "--force"},
	} {
		if code, _, errs := runEnv(t, a, args...); code != 0 {
			t.Fatalf("node a %v: exit %d: %s", args, code, errs)
		}
	}
	code, out, errs := runEnv(t, b, "key", "list", "--domain", "example.com")
	if code != 0 || !strings.Contains(out, "s1") || !strings.Contains(out, "active") {
		t.Fatalf("node b key list: exit %d: %s %s", code, out, errs)
	}
	// The shared queue answers any node's queue commands, serve or not.
	if code, out, errs := runEnv(t, b, "queue", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" && strings.TrimSpace(out) != "null" {
		t.Errorf("queue list on node b: exit %d: %q %s", code, out, errs)
	}
	other := node("c")
	other["DKIMD_MASTER_KEY"] = masterKeyText(t)
	if code, _, errs := runEnv(t, other, "domain", "list"); code == 0 || !strings.Contains(errs, "does not match") {
		t.Fatalf("node with a foreign master key: exit %d: %s", code, errs)
	}
	if strings.Contains(errs, mk) {
		t.Fatal("error quotes the master key")
	}
}

func TestDatabaseNotAURL(t *testing.T) {
	env := map[string]string{"DKIMD_DATA": t.TempDir()}
	code, _, errs := runEnv(t, env, "domain", "list", "--database", "/var/lib/dkimd/dkimd.db")
	if code == 0 || !strings.Contains(errs, "postgres://") {
		t.Fatalf("--database with a path: exit %d: %s", code, errs)
	}
}

// TestServeReadyzFollowsDatabase runs serve on PostgreSQL and takes the
// database away: /readyz turns 503 naming the store while /healthz stays
// 200, and turns 200 again when the database is back, without a restart.
func TestServeReadyzFollowsDatabase(t *testing.T) {
	// A server of its own: stopping the package's would fail other tests.
	own := pgtest.New(pgtest.Options{})
	defer own.Close()
	url := own.Database(t)
	var stderr logtest.Buffer
	addrs, _ := startServe(t, &stderr, "--database", url, "--data", filepath.Join(t.TempDir(), "data"), "--listen-http", "127.0.0.1:0",
		"--listen-submission", "127.0.0.1:0", "--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0", "--hostname", "mail.test")
	addr := addrs["http"]
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := c.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: gave up\n%s", what, stderr.String())
			}
		}
	}
	waitFor("ready", func() bool { code, _ := get("/readyz"); return code == 200 })
	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store") {
		t.Errorf("readyz with the database down: %d %q, want 503 naming the store", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz with the database down: %d, want 200 (the process is up)", code)
	}
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor("ready again", func() bool { code, _ := get("/readyz"); return code == 200 })
}

// TestMigrateFromSQLite copies an installation in use into PostgreSQL:
// nodes on the copy start with the old master key, see the same domains,
// keys (whose private halves still open), users, accounts, tokens and audit
// log, and new IDs follow the copied ones; a second copy into the same
// database is refused and changes nothing.
func TestMigrateFromSQLite(t *testing.T) {
	dir := installation(t)
	env := map[string]string{"DKIMD_DATA": dir}
	code, tokOut, errs := runEnv(t, env, "account", "token", "root", "--label", "script")
	if code != 0 {
		t.Fatalf("account token: %s", errs)
	}
	token := strings.TrimSpace(tokOut)
	url := pg.Database(t)
	code, out, errs := runEnv(t, nil, "migrate", "--from", dir, "--to", url)
	if code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errs)
	}
	for _, want := range []string{"1 domains", "1 keys", "1 users", "1 accounts", "1 tokens", "not copied"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, out)
		}
	}
	node := map[string]string{"DKIMD_DATA": t.TempDir(), "DKIMD_DATABASE": url}
	mkPath := filepath.Join(dir, "master.key")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "list", "--domain", "example.com"}, "active"},
		{[]string{"user", "list"}, "relay"},
		{[]string{"account", "list"}, "root"},
		{[]string{"audit"}, "key.create"},
	} {
		code, out, errs := runEnv(t, node, append(c.args, "--master-key", mkPath)...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v on the copy: exit %d, %q lacks %q: %s", c.args, code, out, c.want, errs)
		}
	}
	// The copy refuses another master key: the check value came along.
	other := filepath.Join(t.TempDir(), "other.key")
	writeMasterKey(t, other)
	if code, _, errs := runEnv(t, node, "domain", "list", "--master-key", other); code == 0 || !strings.Contains(errs, "does not match") {
		t.Errorf("the copy with another master key: exit %d: %s", code, errs)
	}

	ctx := context.Background()
	db, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk, err := keys.LoadMasterKeyFile(mkPath)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := db.ListKeys(ctx, store.KeyFilter{})
	if err != nil || len(ks) != 1 {
		t.Fatalf("keys in the copy: %v %v", ks, err)
	}
	sealed, err := db.SealedKey(ctx, ks[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk.OpenSigner(sealed, ks[0].AssociatedData()); err != nil {
		t.Fatalf("the copied private key does not open under the old master key: %v", err)
	}
	if _, _, err := db.AccountByToken(ctx, auth.HashToken(token)); err != nil {
		t.Errorf("the copied API token does not log in: %v", err)
	}
	before, _ := db.ListAudit(ctx, store.AuditFilter{Limit: 1})
	e, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "cli", Action: "test.after"})
	if err != nil || len(before) != 1 || e.ID <= before[0].ID {
		t.Errorf("a new audit entry after the copy: %v %v, after %v", e.ID, err, before)
	}

	code, _, errs = runEnv(t, nil, "migrate", "--from", dir, "--to", url)
	if code == 0 || !strings.Contains(errs, "not empty") {
		t.Errorf("second migrate into the same database: exit %d: %s", code, errs)
	}
	if ds, _ := db.ListDomains(ctx); len(ds) != 1 {
		t.Errorf("the refused migrate changed the database: %d domains", len(ds))
	}
}
