package relay_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/relay"
	"github.com/dkimd/dkimd/internal/relay/relaytest"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

// Source addresses on loopback (Linux routes all of 127/8 to lo) that the
// fixture's users are authorised by.
const (
	addrNobody     = "127.0.0.1"
	addrIPUser     = "127.0.0.2"
	addrIPDisabled = "127.0.0.3"
	addrReauth     = "127.0.0.4"
)

// Passwords of the fixture's users.
const (
	pwAlice   = "alice-secret-pw"
	pwForeign = "foreign-secret-pw"
	pwReauth  = "reauth-secret-pw"
	pwBroken  = "broken-secret-pw"
	pwNetpw   = "netpw-secret-pw"
	pwOff     = "disabled-secret-pw"
	pwNosel   = "nosel-secret-pw"
)

// fixture is a real SQLite store with two tenants, keys, users of every
// kind, a relay on loopback for each mode, and a queue on disk.
type fixture struct {
	t     testing.TB
	db    *sqlite.DB
	src   *keys.Source
	q     *relaytest.Queue
	srv   *relay.Server
	addrs map[relay.Mode]string
	keys  map[string]store.Key // by "selector._domainkey.domain"
	// mk seals the fixture's keys: the relay's key source opens keys
	// sealed under it.
	mk    *keys.MasterKey
	logs  *syncBuffer
	clock *storetest.Clock
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fastParams make test password hashes cheap.
var fastParams = auth.Params{Memory: 64, Time: 1, Threads: 1}

func newFixture(t testing.TB, tune func(*relay.Options)) *fixture {
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
	f := &fixture{t: t, db: db, keys: map[string]store.Key{}, mk: mk, logs: &syncBuffer{},
		clock: storetest.NewClock(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))}
	if f.src, err = keys.NewSource(keys.SourceOptions{Sealed: db, Master: mk}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tenant-a.example", "sub.tenant-a.example", "tenant-b.example", "granted.example", "broken.example"} {
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
	addKey(mk, "tenant-a.example", "a2", keys.Spec{Algorithm: keys.RSA, Bits: 1024})
	addKey(mk, "tenant-b.example", "b1", ed)
	addKey(mk, "granted.example", "g1", ed)
	// Sealed under another master key: it cannot be opened.
	addKey(otherMK, "broken.example", "bk", ed)

	hash := func(pw string) string {
		h, err := auth.HashPasswordParams(pw, fastParams)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	one := func(a string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(a + "/32")} }
	users := []store.OutgoingUser{
		{Name: "alice", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: hash(pwAlice),
			Enabled: true, Selector: "a1", GrantedDomains: []string{"granted.example"}},
		{Name: "foreign", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: hash(pwForeign),
			Enabled: true, Selector: "a1", AllowForeignFrom: true},
		{Name: "nosel", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: hash(pwNosel),
			Enabled: true, AllowForeignFrom: true},
		{Name: "netpw", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: hash(pwNetpw),
			Enabled: true, Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "off", Domain: "tenant-a.example", Auth: store.AuthPassword, PasswordHash: hash(pwOff)},
		{Name: "broken", Domain: "broken.example", Auth: store.AuthPassword, PasswordHash: hash(pwBroken),
			Enabled: true},
		{Name: "ipuser", Domain: "tenant-a.example", Auth: store.AuthIP, Networks: one(addrIPUser),
			Enabled: true, Selector: "a1"},
		{Name: "ipoff", Domain: "tenant-a.example", Auth: store.AuthIP, Networks: one(addrIPDisabled)},
		{Name: "reauth", Domain: "tenant-a.example", Auth: store.AuthReauth, Networks: one(addrReauth),
			Enabled: true},
		{Name: "reauthpw", Domain: "tenant-a.example", Auth: store.AuthReauth, PasswordHash: hash(pwReauth),
			IdentityHeader: "X-Sender-Id", Enabled: true, AllowForeignFrom: true},
	}
	for _, u := range users {
		if _, err := db.AddUser(ctx, u); err != nil {
			t.Fatalf("AddUser(%s): %v", u.Name, err)
		}
	}

	certDir := t.TempDir()
	cert, err := relay.SelfSignedCertificate(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"), "localhost", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.q = relaytest.NewQueue(t.TempDir())
	opts := relay.Options{
		Directory: db, Keys: f.src, Queue: f.q,
		TLS:              &tls.Config{Certificates: []tls.Certificate{cert}},
		Hostname:         "relay.test",
		TempDir:          t.TempDir(),
		AuthFailureDelay: time.Millisecond,
		// Test clients stay open until their test ends.
		MaxConnections:      1000,
		MaxConnectionsPerIP: 1000,
		Now:                 f.clock.Now,
		Log:                 slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tune != nil {
		tune(&opts)
	}
	f.srv, err = relay.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.addrs = map[relay.Mode]string{}
	var wg sync.WaitGroup
	for _, m := range []relay.Mode{relay.ModeSubmission, relay.ModeSubmissions, relay.ModeRelay} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.addrs[m] = ln.Addr().String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.srv.Serve(ln, m); err != nil {
				t.Errorf("Serve(%s): %v", m, err)
			}
		}()
	}
	t.Cleanup(func() {
		f.srv.Close()
		wg.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs.String())
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

// verify checks the DKIM signatures of a stored message and gives the d=
// of each passing one; a failing one fails the test.
func (f *fixture) verify(body []byte) []string {
	f.t.Helper()
	res, err := dkim.Verify(context.Background(), bytes.NewReader(body),
		&dkim.VerifyOptions{Resolver: f.resolver(), Now: f.clock.Now})
	if err != nil {
		f.t.Fatalf("Verify: %v", err)
	}
	var ds []string
	for _, r := range res {
		if r.Status != dkim.StatusPass {
			f.t.Fatalf("signature d=%s: %s (%s)", r.Domain(), r.Status, r.Reason())
		}
		ds = append(ds, r.Domain())
	}
	return ds
}

// client is a hand-driven SMTP client: it sends exactly the bytes it is
// given, so hostile input reaches the server unchanged.
type client struct {
	t  testing.TB
	c  net.Conn
	tp *textproto.Conn
}

// dial connects from local (an address on loopback, "" for any) and reads
// the greeting.
func dial(t testing.TB, addr, local string) *client {
	t.Helper()
	cl, err := dialRaw(t, addr, local)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := cl.read(); code != 220 {
		t.Fatalf("greeting: %d %s", code, msg)
	}
	return cl
}

// dialRaw connects without reading the greeting.
func dialRaw(t testing.TB, addr, local string) (*client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, tp: textproto.NewConn(c)}, nil
}

// tlsRaw connects to an implicit-TLS listener without reading the greeting.
func tlsRaw(t testing.TB, addr string) *client {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, tp: textproto.NewConn(c)}
}

// dialTLS connects to an implicit-TLS listener.
func dialTLS(t testing.TB, addr string) *client {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, tp: textproto.NewConn(c)}
	if code, msg := cl.read(); code != 220 {
		t.Fatalf("greeting: %d %s", code, msg)
	}
	return cl
}

// read reads one reply; a closed connection gives code 0.
func (c *client) read() (int, string) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil {
		var te *textproto.Error
		if errors.As(err, &te) {
			return te.Code, te.Msg
		}
		return 0, err.Error()
	}
	return code, msg
}

// cmd sends a line and reads the reply.
func (c *client) cmd(line string) (int, string) {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		return 0, err.Error()
	}
	return c.read()
}

// want sends a line and fails unless the reply has code.
func (c *client) want(line string, code int) string {
	c.t.Helper()
	got, msg := c.cmd(line)
	if got != code {
		c.t.Fatalf("%q: got %d %s, want %d", line, got, msg, code)
	}
	return msg
}

// write sends raw bytes.
func (c *client) write(b string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(b)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) ehlo() string { return c.want("EHLO client.test", 250) }

func (c *client) starttls() {
	c.t.Helper()
	c.want("STARTTLS", 220)
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.c, c.tp = tc, textproto.NewConn(tc)
	c.ehlo()
}

// authPlain tries AUTH PLAIN and gives the reply code.
func (c *client) authPlain(user, pw string) int {
	c.t.Helper()
	code, _ := c.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pw)))
	return code
}

// login connects to the submission port, starts TLS and authenticates.
func (f *fixture) login(user, pw string) *client {
	f.t.Helper()
	c := dial(f.t, f.addrs[relay.ModeSubmission], "")
	c.ehlo()
	c.starttls()
	if code := c.authPlain(user, pw); code != 235 {
		f.t.Fatalf("AUTH as %s: %d", user, code)
	}
	return c
}

// message builds a message with CRLF line ends.
func message(header ...string) string {
	h := strings.Join(header, "\r\n")
	return h + "\r\nSubject: test\r\nDate: Wed, 02 Jan 2030 10:00:00 +0000\r\nMessage-ID: <1@client.test>\r\n\r\nHello.\r\n"
}

// send runs one transaction and gives the final reply to DATA (or the
// first refusal before it).
func (c *client) send(from string, to []string, msg string) (int, string) {
	c.t.Helper()
	if code, m := c.cmd("MAIL FROM:<" + from + ">"); code != 250 {
		return code, m
	}
	for _, r := range to {
		if code, m := c.cmd("RCPT TO:<" + r + ">"); code != 250 {
			return code, m
		}
	}
	if code, m := c.cmd("DATA"); code != 354 {
		return code, m
	}
	c.write(msg + ".\r\n")
	return c.read()
}

// only gives the one stored message, failing otherwise.
func (f *fixture) only() relaytest.Message {
	f.t.Helper()
	ms := f.q.Messages()
	if len(ms) != 1 {
		f.t.Fatalf("%d messages queued, want 1", len(ms))
	}
	return ms[0]
}

func (f *fixture) none() {
	f.t.Helper()
	if ms := f.q.Messages(); len(ms) != 0 {
		f.t.Fatalf("%d messages queued, want none: %+v", len(ms), ms[0].Transaction)
	}
}
