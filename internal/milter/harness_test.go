package milter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/logtest"
	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// Client addresses the fixture's users are authorised by.
const (
	addrIPUser  = "192.0.2.2"
	addrReauth  = "192.0.2.4"
	addrNetpw   = "198.51.100.7"
	addrUnknown = "203.0.113.9"
)

// fixture is a real SQLite store with two tenants, their keys and users of
// every kind, and a milter server on loopback.
type fixture struct {
	t       testing.TB
	db      *sqlite.DB
	src     *keys.Source
	srv     *milter.Server
	addr    string
	keys    map[string]store.Key // by record name
	logs    *logtest.Buffer
	clock   *storetest.Clock
	metrics *milter.Metrics
}

func newFixture(t testing.TB, tune func(*milter.Options)) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	otherMK, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, keys: map[string]store.Key{}, logs: &logtest.Buffer{}, metrics: &milter.Metrics{},
		clock: storetest.NewClock(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))}
	if f.src, err = keys.NewSource(keys.SourceOptions{Sealed: db, Master: mk}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tenant-a.example", "tenant-b.example", "granted.example", "broken.example"} {
		if _, err := db.AddDomain(ctx, store.Domain{Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	addKey := func(m *keys.MasterKey, domain, sel string, spec keys.Spec) {
		nk, err := storetest.NewKey(m, domain, sel, spec)
		if err != nil {
			t.Fatal(err)
		}
		k, err := db.CreateKey(ctx, nk)
		if err != nil {
			t.Fatal(err)
		}
		if k, err = db.SetKeyState(ctx, k.ID, store.KeyActive); err != nil {
			t.Fatal(err)
		}
		f.keys[k.RecordName()] = k
	}
	ed := keys.Spec{Algorithm: keys.Ed25519}
	addKey(mk, "tenant-a.example", "a1", ed)
	addKey(mk, "tenant-b.example", "b1", ed)
	addKey(mk, "granted.example", "g1", keys.Spec{Algorithm: keys.RSA, Bits: 1024})
	addKey(mk, "granted.example", "g2", ed)
	// Sealed under another master key: it cannot be opened.
	addKey(otherMK, "broken.example", "bk", ed)

	pw, err := auth.HashPasswordParams("unused-here", auth.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	one := func(a string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(a + "/32")} }
	users := []store.OutgoingUser{
		{Name: "alice", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: pw,
			Enabled: true, Selector: "a1", GrantedDomains: []string{"granted.example"}},
		{Name: "bob@tenant-b.example", Domain: "tenant-b.example", Auth: store.AuthPassword, PasswordHash: pw,
			Enabled: true},
		{Name: "netpw", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: pw,
			Enabled: true, Selector: "a1", Networks: one(addrNetpw)},
		{Name: "off", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: pw, Selector: "a1"},
		{Name: "broken", Domain: "broken.example", Auth: store.AuthPassword, PasswordHash: pw, Enabled: true},
		{Name: "ipuser", Domain: "tenant-a.example", Auth: store.AuthIP, Networks: one(addrIPUser), Enabled: true, Selector: "a1"},
		{Name: "reauth", Domain: "tenant-a.example", Auth: store.AuthReauth, Networks: one(addrReauth), Enabled: true},
		// Users that may send mail from any domain (a newsletter tool):
		// never signed as a domain they do not own, their own by selector.
		{Name: "anyfrom", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: pw,
			Enabled: true, Selector: "a1", AllowForeignFrom: true},
		{Name: "anyfrom-nosel", Domain: "tenant-b.example", Auth: store.AuthPassword, PasswordHash: pw,
			Enabled: true, AllowForeignFrom: true},
	}
	for _, u := range users {
		if _, err := db.AddUser(ctx, u); err != nil {
			t.Fatalf("AddUser(%s): %v", u.Name, err)
		}
	}
	opts := milter.Options{
		Directory: db, Keys: f.src, Now: f.clock.Now, Metrics: f.metrics,
		Log: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tune != nil {
		tune(&opts)
	}
	f.srv, err = milter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ln) }()
	t.Cleanup(func() {
		f.srv.Close()
		if err := <-done; err != milter.ErrClosed {
			t.Errorf("Serve: %v, want ErrClosed", err)
		}
		if t.Failed() {
			t.Logf("milter log:\n%s", f.logs.String())
		}
	})
	return f
}

// resolver answers key lookups from the fixture's keys.
func (f *fixture) resolver() dkim.Resolver {
	return dkim.ResolverFunc(func(_ context.Context, name string) ([]string, error) {
		k, ok := f.keys[strings.TrimSuffix(name, ".")]
		if !ok {
			return nil, fmt.Errorf("%w: %s", dkim.ErrKeyNotFound, name)
		}
		rec, err := lifecycle.Record(k)
		if err != nil {
			return nil, err
		}
		return []string{rec.Value}, nil
	})
}

// verify checks every DKIM signature of msg and gives the d= and s= of
// each; one that fails fails the test.
func (f *fixture) verify(msg []byte) []string {
	f.t.Helper()
	res, err := dkim.Verify(context.Background(), bytes.NewReader(msg), &dkim.VerifyOptions{Resolver: f.resolver(), Now: f.clock.Now})
	if err != nil {
		f.t.Fatalf("Verify: %v", err)
	}
	var out []string
	for _, r := range res {
		if r.Status != dkim.StatusPass {
			f.t.Fatalf("signature d=%s: %s (%s)\n%s", r.Domain(), r.Status, r.Reason(), msg)
		}
		out = append(out, r.Domain()+"/"+r.Signature.Selector)
	}
	return out
}

// mta plays the MTA with go-milter's client, as Postfix does: one milter
// connection per SMTP session, macros per stage, header values with their
// leading space and folded lines ending in LF, body in chunks.
type mta struct {
	t         testing.TB
	s         *gomilter.ClientSession
	macros    *gomilter.MacroBag
	connected bool
}

// connect sends the connect and HELO events, from addr.
func (m *mta) connect(addr string) {
	m.t.Helper()
	if _, err := m.s.Conn("client.example", gomilter.FamilyInet, 4711, addr); err != nil {
		m.t.Fatalf("Conn: %v", err)
	}
	if _, err := m.s.Helo("client.example"); err != nil {
		m.t.Fatalf("Helo: %v", err)
	}
	m.connected = true
}

func (f *fixture) dial(opts ...gomilter.Option) *mta {
	f.t.Helper()
	m := &mta{t: f.t, macros: gomilter.NewMacroBag()}
	m.macros.Set(gomilter.MacroDaemonName, "ORIGINATING")
	opts = append([]gomilter.Option{gomilter.WithActions(gomilter.AllClientSupportedActionMasks)}, opts...)
	cl := gomilter.NewClient("tcp", f.addr, opts...)
	s, err := cl.Session(m.macros)
	if err != nil {
		f.t.Fatalf("milter session: %v", err)
	}
	f.t.Cleanup(func() { s.Close() })
	m.s = s
	return m
}

// message is one message as the MTA hands it over.
type message struct {
	authUser, clientAddr string
	header               [][2]string // name, value as after the colon
	body                 []byte
	chunk                int // body chunk size; 0 means 65535
}

// result is what the milter answered, and the message as the MTA would
// pass it on.
type result struct {
	stage  string // where the milter decided: mail, eoh or eom
	action *gomilter.Action
	mods   []gomilter.ModifyAction
	out    []byte
}

func (r result) signatures() int { return bytes.Count(r.out, []byte("DKIM-Signature:")) }

func (m *mta) send(msg message) result {
	m.t.Helper()
	m.macros.Set(gomilter.MacroAuthAuthen, msg.authUser)
	m.macros.Set(gomilter.MacroClientAddr, msg.clientAddr)
	m.macros.Set(gomilter.MacroQueueId, "Q"+fmt.Sprint(time.Now().UnixNano()))
	fail := func(what string, err error) { m.t.Fatalf("%s: %v", what, err) }
	if !m.connected {
		m.connect(addrUnknown)
	}
	// Postfix aborts a transaction the milter answered early before the
	// next one.
	abort := func() {
		if err := m.s.Abort(nil); err != nil {
			fail("Abort", err)
		}
	}
	act, err := m.s.Mail("sender@example.org", "")
	if err != nil {
		fail("Mail", err)
	}
	if act.Type != gomilter.ActionContinue {
		abort()
		return result{stage: "mail", action: act}
	}
	if _, err := m.s.Rcpt("rcpt@example.net", ""); err != nil {
		fail("Rcpt", err)
	}
	if _, err := m.s.DataStart(); err != nil {
		fail("DataStart", err)
	}
	for _, h := range msg.header {
		if _, err := m.s.HeaderField(h[0], h[1], nil); err != nil {
			fail("HeaderField", err)
		}
	}
	if act, err = m.s.HeaderEnd(); err != nil {
		fail("HeaderEnd", err)
	}
	if act.Type != gomilter.ActionContinue {
		abort()
		return result{stage: "eoh", action: act}
	}
	n := msg.chunk
	if n == 0 {
		n = 65535
	}
	for b := msg.body; len(b) > 0; {
		c := b[:min(n, len(b))]
		b = b[len(c):]
		if _, err := m.s.BodyChunk(c); err != nil {
			fail("BodyChunk", err)
		}
	}
	var mods []gomilter.ModifyAction
	if len(msg.body) == 0 {
		// go-milter's client ends a message only after a body chunk.
		if _, err := m.s.BodyChunk(nil); err != nil {
			fail("BodyChunk", err)
		}
	}
	mods, act, err = m.s.End()
	if err != nil {
		fail("End", err)
	}
	return result{stage: "eom", action: act, mods: mods, out: apply(msg, mods)}
}

// apply builds the message as Postfix would pass it on: header fields
// inserted as the milter asked, "Name:value" as with SMFIP_HDR_LEADSPC.
func apply(msg message, mods []gomilter.ModifyAction) []byte {
	fields := make([]string, 0, len(msg.header))
	for _, h := range msg.header {
		fields = append(fields, h[0]+":"+h[1])
	}
	for _, a := range mods {
		switch a.Type {
		case gomilter.ActionInsertHeader:
			i := min(int(a.HeaderIndex), len(fields))
			fields = append(fields[:i], append([]string{a.HeaderName + ":" + a.HeaderValue}, fields[i:]...)...)
		case gomilter.ActionAddHeader:
			fields = append(fields, a.HeaderName+":"+a.HeaderValue)
		}
	}
	var b bytes.Buffer
	for _, f := range fields {
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(f, "\r\n", "\n"), "\n", "\r\n"))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(msg.body)
	return b.Bytes()
}

// plain is a message from alice's domain with the usual header.
func plain(from string) message {
	return message{
		header: [][2]string{
			{"From", " Alice <" + from + ">"},
			{"To", " rcpt@example.net"},
			{"Subject", " Hello"},
			{"Date", " Wed, 02 Jan 2030 10:00:00 +0000"},
			{"Message-ID", " <1@tenant-a.example>"},
		},
		body: []byte("Hello,\r\n\r\nthis is a test.\r\n"),
	}
}
