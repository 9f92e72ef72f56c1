package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/logtest"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

const domain = "example.com"

// start is the test clock's first reading: 2026-01-02, so default
// selectors are s202601….
var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// world is dkimd on a store and a clock, with DNS for example.com served by
// a resolver and two authoritative name servers on loopback, whose records
// the test changes as an administrator publishing them would.
type world struct {
	t        *testing.T
	ctx      context.Context
	clk      *storetest.Clock
	db       *sqlite.DB
	lc       *lifecycle.Service
	keys     *keys.Source
	dns      lifecycle.DNS
	mon      *lifecycle.Monitor
	logs     *logtest.Buffer
	resolver *dnstest.Server
	ns       map[string]*dnstest.Server // by host, canonical

	mu      sync.Mutex
	records map[*dnstest.Server]map[string]string // selector → record value, as each serves it
}

type worldOptions struct {
	autoActivate bool
	settings     lifecycle.Settings
	monitor      lifecycle.MonitorOptions
}

// cli is who the tests act as, as the command line does.
var cli = lifecycle.By{Name: "cli"}

func newWorld(t *testing.T, wo worldOptions) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), clk: storetest.NewClock(start), logs: &logtest.Buffer{},
		ns: map[string]*dnstest.Server{}, records: map[*dnstest.Server]map[string]string{}}
	db, err := sqlite.Open(w.ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.db = db
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	w.resolver = dnstest.NewServer(t, dnstest.Zone{})
	for _, h := range []string{"ns1.example.com.", "ns2.example.com."} {
		w.ns[h] = dnstest.NewServer(t, dnstest.Zone{Authoritative: true})
	}
	w.dns = lifecycle.DNS{
		Resolver: w.resolver.Addr(),
		Timeout:  300 * time.Millisecond,
		NameServerAddr: func(host string, _ netip.Addr) string {
			if s, ok := w.ns[dns.CanonicalName(host)]; ok {
				return s.Addr()
			}
			return "127.0.0.1:1"
		},
		Now: w.clk.Now,
	}
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if w.keys, err = keys.NewSource(keys.SourceOptions{Sealed: db, Master: mk, Log: log}); err != nil {
		t.Fatal(err)
	}
	w.lc, err = lifecycle.NewService(lifecycle.ServiceOptions{Store: db, Master: mk, DNS: w.dns, Settings: wo.settings,
		Signers: w.keys, Now: w.clk.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	w.publish(nil)
	if _, err := db.AddDomain(w.ctx, store.Domain{Name: domain, AutoActivate: wo.autoActivate}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddUser(w.ctx, store.OutgoingUser{Name: "alice", Domain: domain, Auth: store.AuthIP,
		Enabled: true, Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}); err != nil {
		t.Fatal(err)
	}
	o := wo.monitor
	o.Service, o.Log = w.lc, log
	o.Rand = func() float64 { return 0.5 } // no jitter: exact schedules
	if w.mon, err = lifecycle.NewMonitor(o); err != nil {
		t.Fatal(err)
	}
	return w
}

// publish changes what every server serves (selector → value, ""
// removing the record); faults, if given, apply to every server from now.
func (w *world) publish(change map[string]string, faults ...map[string]dnstest.Fault) {
	w.publishOn(nil, change, faults...)
}

// publishOn changes the records of the resolver and the name servers
// hosts (all when nil) only: the others keep what they served, as while a
// change propagates.
func (w *world) publishOn(hosts []string, change map[string]string, faults ...map[string]dnstest.Fault) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var f map[string]dnstest.Fault
	if len(faults) > 0 {
		f = faults[0]
	}
	servers := map[*dnstest.Server]bool{w.resolver: false}
	for h, s := range w.ns {
		if hosts == nil || slices.Contains(hosts, h) {
			servers[s] = true
		}
	}
	for s, auth := range servers {
		recs := w.records[s]
		if recs == nil {
			recs = map[string]string{}
			w.records[s] = recs
		}
		for sel, v := range change {
			if v == "" {
				delete(recs, sel)
			} else {
				recs[sel] = v
			}
		}
		rrs := []dns.RR{dnstest.SOA(domain)}
		for h := range w.ns {
			rrs = append(rrs, dnstest.NS(domain, h), dnstest.A(h, "127.0.0.1"))
		}
		for sel, v := range recs {
			rrs = append(rrs, dnstest.TXT(sel+"._domainkey."+domain, dkim.SplitTXT(v)...))
		}
		s.SetZone(dnstest.Zone{Records: rrs, Faults: f, Authoritative: auth})
	}
}

// publishKey publishes the record admin says to publish for a key now.
func (w *world) publishKey(k store.Key) {
	w.t.Helper()
	k = w.key(k.Selector)
	p, err := lifecycle.Record(k)
	if err != nil {
		w.t.Fatal(err)
	}
	v := ""
	if p != nil {
		v = p.Value
	}
	w.publish(map[string]string{k.Selector: v})
}

func (w *world) key(selector string) store.Key {
	w.t.Helper()
	k, err := w.db.KeyBySelector(w.ctx, domain, selector)
	if err != nil {
		w.t.Fatal(err)
	}
	return k
}

// wantStates fails unless each selector's key is in the given state.
func (w *world) wantStates(step string, want map[string]store.KeyState) {
	w.t.Helper()
	for sel, st := range want {
		if k := w.key(sel); k.State != st {
			w.t.Fatalf("%s: key %s is %s, want %s", step, sel, k.State, st)
		}
	}
}

func (w *world) checkOnce() {
	w.t.Helper()
	if err := w.mon.CheckOnce(w.ctx); err != nil {
		w.t.Fatalf("CheckOnce: %v", err)
	}
}

func (w *world) generate(selector string, spec keys.Spec) store.Key {
	w.t.Helper()
	g, err := w.lc.Generate(w.ctx, cli, lifecycle.NewKeyRequest{Domain: domain, Selector: selector, Spec: spec})
	if err != nil {
		w.t.Fatal(err)
	}
	return g.Key
}

const message = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: rotation\r\nDate: Fri, 2 Jan 2026 03:04:05 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello.\r\n"

// sign signs the message the way the relay does at this moment: the
// signing rule picks the keys, the key source opens them. It gives the
// signed message and the selectors that signed.
func (w *world) sign() (string, []string) {
	w.t.Helper()
	u, err := w.db.GetUser(w.ctx, "alice")
	if err != nil {
		w.t.Fatal(err)
	}
	d := policy.Decide(w.ctx, w.db, &u, "Alice <alice@example.com>")
	if !d.Signs() {
		w.t.Fatalf("policy does not sign: %s (%s)", d.Reason, d.Message)
	}
	var sks []dkim.SignKey
	var sels []string
	for _, s := range d.Sign {
		k, err := w.db.GetKey(w.ctx, s.KeyID)
		if err != nil {
			w.t.Fatal(err)
		}
		signer, err := w.keys.Signer(w.ctx, k.Ref())
		if err != nil {
			w.t.Fatal(err)
		}
		sks = append(sks, dkim.SignKey{Domain: s.Domain.String(), Selector: s.Selector, Signer: signer})
		sels = append(sels, s.Selector)
	}
	sigs, err := dkim.Sign(strings.NewReader(message), &dkim.SignOptions{Keys: sks, Now: w.clk.Now,
		Expiration: lifecycle.DefaultSignatureLifetime})
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.Join(sigs, "") + message, sels
}

// verify checks every signature of msg against what DNS serves now.
func (w *world) verify(msg string) []dkim.Result {
	w.t.Helper()
	rs, err := dkim.Verify(w.ctx, strings.NewReader(msg), &dkim.VerifyOptions{Resolver: w, Now: w.clk.Now})
	if err != nil {
		w.t.Fatal(err)
	}
	if len(rs) == 0 {
		w.t.Fatal("no signature found")
	}
	return rs
}

// signAndVerify signs as the relay would now and verifies as a receiver
// would now; every signature must pass.
func (w *world) signAndVerify(step string, wantSelectors ...string) string {
	w.t.Helper()
	msg, sels := w.sign()
	if strings.Join(sels, ",") != strings.Join(wantSelectors, ",") {
		w.t.Fatalf("%s: signed with %v, want %v", step, sels, wantSelectors)
	}
	for _, r := range w.verify(msg) {
		if r.Status != dkim.StatusPass {
			w.t.Fatalf("%s: signature s=%s: %s (%v)", step, r.Signature.Selector, r.Status, r.Err)
		}
	}
	return msg
}

// LookupTXT asks the loopback resolver, as a receiver's verifier would:
// it makes w a dkim.Resolver.
func (w *world) LookupTXT(ctx context.Context, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	c := &dns.Client{Timeout: time.Second}
	in, _, err := c.ExchangeContext(ctx, m, w.resolver.Addr())
	if err != nil {
		return nil, err
	}
	if in.Rcode == dns.RcodeNameError {
		return nil, fmt.Errorf("%w: %s", dkim.ErrKeyNotFound, name)
	}
	if in.Rcode != dns.RcodeSuccess {
		return nil, errors.New(dns.RcodeToString[in.Rcode])
	}
	var out []string
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", dkim.ErrKeyNotFound, name)
	}
	return out, nil
}
