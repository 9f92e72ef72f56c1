package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/logtest"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"DKIMD_DATABASE": url}
	var stderr logtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dkimd", "serve", "--data", filepath.Join(t.TempDir(), "data"), "--listen-http", addr,
			"--listen-submission", "127.0.0.1:0", "--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0", "--hostname", "mail.test"},
			&Env{Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}()
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
