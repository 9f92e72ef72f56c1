package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// storeDrivers are the database drivers only a store backend may import.
var storeDrivers = []string{"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/lib/pq", "github.com/mattn/go-sqlite3"}

// rules are the import rules of each package's doc.go, in the direction
// DESIGN.md draws: cli → server → web/relay/milter → admin →
// lifecycle/policy/queue/delivery/dnscheck → store/keys → dkim → stdlib,
// with mailaddr a leaf any of them may use.
var rules = []rule{
	{pkg: "internal/dkim", stdOnly: true,
		why: "dkim: \"only the standard library\""},
	{pkg: "internal/datadir", stdOnly: true,
		why: "datadir: \"imports only the standard library\""},
	{pkg: "internal/keys", deny: []string{"internal/store", "internal/web", "internal/relay", "internal/cli"},
		why: "keys: \"must not import the store, web, relay or cli packages\""},
	{pkg: "internal/keys/pkcs11", only: []string{"internal/keys"},
		why: "keys/pkcs11: \"imports keys only; it must not import the store, admin, web, relay or cli packages\""},
	{pkg: "internal/keys/pkcs11/pkcs11test", testOnly: true, only: []string{"internal/keys/pkcs11", "internal/peertest"},
		why: "pkcs11test: \"imports keys/pkcs11 and peertest, and nothing of dkimd's services\"; only tests import it"},
	{pkg: "internal/auth", deny: []string{"internal/store", "internal/policy", "internal/web", "internal/relay", "internal/cli"},
		why: "auth: \"must not import store, policy, web, relay or cli\""},
	{pkg: "internal/store", deny: append([]string{"internal/web", "internal/relay", "internal/milter", "internal/policy", "internal/cli", "internal/store/sqlite"}, storeDrivers...),
		why: "store: \"must not import web, relay, milter, policy, cli or any database driver\""},
	{pkg: "internal/store/sqlite", deny: []string{"internal/web", "internal/relay", "internal/milter", "internal/policy", "internal/cli"},
		why: "store/sqlite: \"must not import web, relay, milter, policy or cli\""},
	{pkg: "internal/store/postgres", deny: []string{"internal/web", "internal/relay", "internal/milter", "internal/policy", "internal/cli", "internal/store/sqlite", "internal/delivery", "internal/admin"},
		why: "store/postgres: \"must not import web, relay, milter, policy, cli, admin, delivery or the other backend\""},
	{pkg: "internal/store/postgres/pgtest", testOnly: true, only: []string{},
		why: "pgtest: \"must import nothing of dkimd\"; only tests import it"},
	{pkg: "internal/store/storetest", testOnly: true, deny: append([]string{"internal/store/sqlite"}, storeDrivers...),
		why: "storetest: \"must not import a backend\"; only tests import it"},
	{pkg: "internal/policy", deny: append([]string{"internal/web", "internal/relay", "internal/milter", "internal/cli", "internal/store/sqlite"}, storeDrivers...),
		why: "policy: \"must not import web, relay, milter, cli or a store backend\""},
	{pkg: "internal/mailaddr", only: []string{},
		why: "mailaddr: \"may import the standard library and golang.org/x/net/idna, nothing of dkimd\""},
	{pkg: "internal/dnscheck", only: []string{"internal/dkim"},
		why: "dnscheck: \"may import the dkim package, the standard library and miekg/dns\""},
	{pkg: "internal/dnscheck/dnstest", testOnly: true, only: []string{},
		why: "dnstest: \"must import nothing from dkimd\"; only tests import it"},
	{pkg: "internal/lifecycle", only: []string{"internal/store", "internal/keys", "internal/dkim", "internal/dnscheck", "internal/mailaddr"},
		why: "lifecycle: \"may import store, keys, dkim, dnscheck, mailaddr\"; \"must not import admin, policy, web, relay, milter, queue or cli\""},
	{pkg: "internal/queue", only: []string{"internal/mailaddr"},
		why: "queue: \"must not import delivery, relay, milter, web, cli, admin, store, policy or keys\"; \"of dkimd it imports only mailaddr\""},
	{pkg: "internal/queue/queuetest", testOnly: true, only: []string{"internal/queue"},
		why: "queuetest: \"must import nothing of dkimd but the queue package\"; only tests import it"},
	{pkg: "internal/delivery", only: []string{"internal/queue", "internal/mailaddr"},
		why: "delivery: \"of dkimd it imports only queue and mailaddr\""},
	{pkg: "internal/delivery/deliverytest", testOnly: true, only: []string{},
		why: "deliverytest: \"must not import the delivery or queue packages or anything else of dkimd\"; only tests import it"},
	{pkg: "internal/web/webtest", testOnly: true, only: []string{"internal/dnscheck/dnstest", "internal/lifecycle", "internal/queue"},
		why: "webtest: \"may import dnscheck/dnstest, lifecycle and queue; nothing imports it but tests\""},
	{pkg: "internal/admin/admintest", testOnly: true, only: []string{"internal/admin", "internal/lifecycle", "internal/keys", "internal/keys/pkcs11", "internal/queue", "internal/store"},
		why: "admintest: \"may import admin, lifecycle, keys, keys/pkcs11, queue and store; nothing imports it but tests\""},
	{pkg: "internal/admin", only: []string{"internal/store", "internal/keys", "internal/policy", "internal/lifecycle", "internal/queue", "internal/dkim", "internal/auth", "internal/mailaddr", "internal/delegation", "internal/dnscheck"},
		why: "admin: \"must not import web, relay, milter or cli\""},
	{pkg: "internal/dnsserver", only: []string{"internal/dkim"},
		why: "dnsserver: \"may import dkim, the standard library and miekg/dns; it must not import store, keys, lifecycle, admin, web, relay or cli\""},
	{pkg: "internal/dnsupdate", only: []string{"internal/dkim"},
		why: "dnsupdate: \"may import dkim, the standard library and miekg/dns; it must not import store, keys, lifecycle, admin, web or cli\""},
	{pkg: "internal/delegation", only: []string{"internal/store", "internal/keys", "internal/dkim", "internal/dnscheck", "internal/dnsserver", "internal/dnsupdate"},
		why: "delegation: \"may import store, keys, dkim, dnscheck, dnsserver, dnsupdate\"; \"must not import admin, lifecycle, web, relay or cli\""},
	{pkg: "internal/milter", only: []string{"internal/policy", "internal/dkim", "internal/store", "internal/keys", "internal/mailaddr"},
		why: "milter: \"may import policy, dkim, store and keys; must not import web, cli, relay or admin\""},
	{pkg: "internal/relay", deny: append([]string{"internal/web", "internal/milter", "internal/cli", "internal/store/sqlite", "internal/delivery"}, storeDrivers...),
		why: "relay: \"must not import web, milter, cli or a store backend\"; it hands messages to a queue, never delivers"},
	{pkg: "internal/relay/relaytest", testOnly: true, only: []string{"internal/relay"},
		why: "relaytest: \"must not import anything of dkimd but relay (and what relay's types need)\"; only tests import it"},
	{pkg: "internal/web", deny: append([]string{"internal/web/panel", "internal/relay", "internal/milter", "internal/cli", "internal/store/sqlite", "internal/delivery"}, storeDrivers...),
		why: "web: \"must not import the panel (internal/web/panel, which imports it), a store backend, relay, milter or cli\""},
	{pkg: "internal/web/panel", importedBy: []string{"internal/server"}, deny: append([]string{"internal/relay", "internal/milter", "internal/cli", "internal/store/sqlite", "internal/delivery"}, storeDrivers...),
		why: "web/panel: \"must not import a store backend, relay, milter, delivery or cli, and only server imports it\""},
	{pkg: "internal/metrics", deny: []string{"internal/web", "internal/cli", "internal/store"},
		why: "metrics: \"must not import web, cli or store\""},
	{pkg: "internal/logtest", testOnly: true, stdOnly: true,
		why: "logtest: \"must import nothing of dkimd: only the standard library\"; only tests import it"},
	{pkg: "internal/peertest", importedBy: []string{"internal/keys/pkcs11/pkcs11test"}, deny: []string{"internal/dkim"},
		why: "peertest: \"must not import dkimd's own DKIM code\"; only tests import it (and pkcs11test, itself for tests only)"},
	{pkg: "internal/dataopen", importedBy: []string{"internal/cli", "internal/server"}, deny: []string{"internal/cli", "internal/server", "internal/admin", "internal/lifecycle", "internal/web", "internal/relay", "internal/milter"},
		why: "dataopen: \"only cli and server import it, and it must not import cli, server, admin, lifecycle, web, relay or milter\""},
	{pkg: "internal/server", importedBy: []string{"internal/cli"}, deny: []string{"internal/store/sqlite"},
		why: "server: \"Only cli imports it; it must not import cli or ... internal/store/sqlite\""},
	{pkg: "internal/cli", importedBy: []string{"cmd/dkimd"},
		why: "cli: \"none may import it\" (but main)"},
	{pkg: "internal/interop", testOnly: true,
		why: "interop: \"has no non-test code and must not be imported\""},
	{pkg: "internal/systemtest", testOnly: true, only: []string{},
		why: "systemtest: \"nothing imports it\""},
	{pkg: "internal/archtest", testOnly: true, only: []string{},
		why: "archtest: \"must not be imported\""},
}

// TestImportRules checks every rule against the module's import graph as
// go list reports it (without test files).
func TestImportRules(t *testing.T) {
	g := loadGraph(t)
	for _, v := range check(g, rules) {
		t.Error(v)
	}
}

// loadGraph runs go list -deps -json over the module.
func loadGraph(t *testing.T) graph {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not in PATH: cannot read the import graph")
	}
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,Imports,Deps", "../../...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.Bytes())
	}
	g := graph{module: strings.TrimSpace(string(mod)), imports: map[string][]string{}, deps: map[string][]string{}, std: map[string]bool{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Standard   bool
			Imports    []string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		g.std[p.ImportPath] = p.Standard
		if !p.Standard {
			g.imports[p.ImportPath], g.deps[p.ImportPath] = p.Imports, p.Deps
		}
	}
	if len(g.deps) < 10 {
		t.Fatalf("go list found %d packages of the module: run from the module", len(g.deps))
	}
	return g
}
