package lifecycle_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/delegation"
	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
	"github.com/dkimd/dkimd/internal/dnsserver"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/peertest"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

const (
	rotZone = "dkim.provider.example"
	rotCust = "customer.example"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signed is a message and the time its signature expires.
type signed struct {
	msg      []byte
	selector string
	at       time.Time
	expires  time.Time
}

// TestScheduledRotationDelegated runs delegated rotation on a fast clock
// (keys rotate every 10 minutes, signatures live 3) with real DNS: dkimd's
// zone served by dnsserver from the store, the customer's CNAMEs on
// another server, and a real unbound resolving for the checks and for the
// verifier. Every 20 seconds of the clock it signs a message with the key
// the store says signs, and verifies every message signed so far whose
// signature has not expired: none may fail, before, during or after a
// switch.
func TestScheduledRotationDelegated(t *testing.T) {
	if testing.Short() {
		t.Skip("a rotation run takes several seconds")
	}
	ctx := context.Background()
	clk := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pol := lifecycle.Settings{SignatureLifetime: 3 * time.Minute, QueueLifetime: time.Minute}
	svcs := admintest.New(t, admintest.Options{Store: db, Master: mk, Settings: pol, Now: clk.Now})
	svc := svcs.Admin
	if _, err := svc.AddDomain(ctx, admin.CLI(), store.Domain{Name: rotCust}); err != nil {
		t.Fatal(err)
	}
	dom, err := svc.SetPublishing(ctx, admin.CLI(), rotCust, admin.PublishRequest{Mode: store.PublishDelegated, Zone: rotZone, RotateEvery: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	// dkimd's zone, served from the store.
	srv, err := dnsserver.New(dnsserver.Options{Zone: rotZone, TTL: 1,
		NameServers: []dnsserver.NameServer{{Name: "ns1." + rotZone, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	srvAddr, wait, err := srv.Listen(sctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		wait()
	}()
	src := delegation.Source{Store: db, Zone: rotZone}
	// The customer's zone with the two CNAMEs, made once.
	cust := dnstest.NewServer(t, dnstest.Zone{Authoritative: true, Records: []dns.RR{
		dnstest.SOA(rotCust), dnstest.NS(rotCust, "ns1."+rotCust), dnstest.A("ns1."+rotCust, "127.0.0.1"),
		dnstest.CNAME("s1._domainkey."+rotCust, delegation.Target(dom, "s1")),
		dnstest.CNAME("s2._domainkey."+rotCust, delegation.Target(dom, "s2")),
	}})
	resolver := peertest.Unbound(t, map[string]string{rotCust: cust.Addr(), rotZone: srvAddr.String()})

	checker := lifecycle.DNS{Resolver: resolver, Timeout: time.Second, Now: clk.Now,
		NameServerAddr: func(host string, _ netip.Addr) string {
			if strings.HasSuffix(dns.CanonicalName(host), rotZone+".") {
				return srvAddr.String()
			}
			return cust.Addr()
		}}
	sched, err := lifecycle.NewScheduler(lifecycle.SchedulerOptions{
		Store: db, Checker: checker, Service: svcs.Lifecycle,
		Publisher: delegation.Publisher{Refresh: func(ctx context.Context) error { return srv.Refresh(ctx, src) }},
		RecordTTL: 30 * time.Second, StuckAfter: 5 * time.Minute,
		Spec: keys.Spec{Algorithm: keys.Ed25519}, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	order := rotate(t, ctx, clk, sched, svcs.Keys, db, pol, resolver, 100, func() error { return srv.Refresh(ctx, src) })
	if len(order) < 4 {
		t.Fatalf("keys that signed, in turn: %v; want the first and three rotations", order)
	}
	for i := 1; i < len(order); i++ {
		if order[i][:2] == order[i-1][:2] {
			t.Errorf("two keys in a row on one selector: %v", order)
		}
	}
	if st := sched.Status(); len(st) != 1 || st[0].Blocked {
		t.Errorf("rotation status: %+v", st)
	}
	audit, err := db.ListAudit(ctx, store.AuditFilter{Domain: rotCust})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range audit {
		steps = append(steps, e.Action+": "+e.Detail)
	}
	for _, want := range []string{"key.rotate", "pending → active", "active → retired", "retired → revoked", "revoked → archived"} {
		if !strings.Contains(strings.Join(steps, " "), want) {
			t.Errorf("audit log lacks %s: %v", want, steps)
		}
	}
}

// peertestResolver is a Go resolver that asks addr only.
func peertestResolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// rotate steps the scheduler every 20 seconds of the clock, steps times;
// after each step it signs a message with the key the store says signs and
// verifies, through resolver, every message signed so far whose signature
// has not expired. It gives the keys that signed, in turn.
func rotate(t *testing.T, ctx context.Context, clk *fakeClock, sched *lifecycle.Scheduler, src *keys.Source, db *sqlite.DB,
	pol lifecycle.Settings, resolver string, steps int, after func() error) []string {
	t.Helper()
	verifier := dkim.NetResolver{Resolver: peertestResolver(resolver)}

	var msgs []signed
	used := map[string]int{}
	var order []string
	const step = 20 * time.Second
	for i := range steps {
		if err := sched.Step(ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if err := after(); err != nil {
			t.Fatal(err)
		}
		act, err := db.ActiveKeys(ctx, rotCust)
		if err != nil {
			t.Fatal(err)
		}
		if len(act) > 1 {
			t.Fatalf("step %d: %d keys active at once", i, len(act))
		}
		if len(act) == 1 {
			k := act[0]
			if len(order) == 0 || order[len(order)-1] != fmt.Sprintf("%s#%d", k.Selector, k.ID) {
				order = append(order, fmt.Sprintf("%s#%d", k.Selector, k.ID))
				t.Logf("%s: key %s (%d) signs", clk.Now().Format("15:04:05"), k.Selector, k.ID)
			}
			signer, err := src.Signer(ctx, k.Ref())
			if err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprintf("From: a@%s\r\nTo: b@example.net\r\nSubject: %d\r\nMessage-ID: <%d@%s>\r\n\r\nHello %d.\r\n", rotCust, i, i, rotCust, i)
			fields, err := dkim.Sign(strings.NewReader(msg), &dkim.SignOptions{
				Keys:       []dkim.SignKey{{Domain: rotCust, Selector: k.Selector, Signer: signer}},
				Expiration: pol.SignatureLifetime, Now: clk.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, signed{msg: peertest.Prepend([]byte(msg), fields...), selector: k.Selector, at: clk.Now(), expires: clk.Now().Add(pol.SignatureLifetime)})
			used[k.Selector]++
		}
		// Every signature not yet expired verifies now, through DNS.
		for _, m := range msgs {
			if !clk.Now().Before(m.expires) {
				continue
			}
			res, err := dkim.Verify(ctx, bytes.NewReader(m.msg), &dkim.VerifyOptions{Resolver: verifier, Now: clk.Now})
			if err != nil || len(res) != 1 || res[0].Status != dkim.StatusPass {
				st := sched.Status()
				t.Fatalf("step %d (%s): a signature by %s made at %s does not verify: %v %v; rotation: %+v",
					i, clk.Now().Format("15:04:05"), m.selector, m.at.Format("15:04:05"), res, err, st)
			}
		}
		clk.Advance(step)
	}
	return order
}

// TestScheduledRotationUpdate runs rotation on a fast clock for a domain
// on its own BIND, published by RFC 2136 UPDATE with a TSIG key the zone's
// update-policy allows for _domainkey names: each key is added by UPDATE,
// checked, switched to when due, and its record removed once its last
// signature has expired. Every live signature verifies at every step,
// through a real unbound.
func TestScheduledRotationUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("a rotation run takes several seconds")
	}
	ctx := context.Background()
	clk := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	bind := peertest.Bind(t, peertest.BindOptions{
		Keys:  map[string]string{"dkimd": secret},
		Zones: []peertest.BindZone{{Name: rotCust, UpdatePolicy: "grant dkimd subdomain _domainkey." + rotCust + ". TXT;"}},
	})
	resolver := peertest.Unbound(t, map[string]string{rotCust: bind})
	pol := lifecycle.Settings{SignatureLifetime: 3 * time.Minute, QueueLifetime: time.Minute}
	svcs := admintest.New(t, admintest.Options{Store: db, Master: mk, Settings: pol, Now: clk.Now})
	svc := svcs.Admin
	if _, err := svc.AddDomain(ctx, admin.CLI(), store.Domain{Name: rotCust}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetPublishing(ctx, admin.CLI(), rotCust, admin.PublishRequest{Mode: store.PublishUpdate, RotateEvery: 10 * time.Minute,
		UpdateServer: bind, TSIGName: "dkimd", TSIGSecret: []byte(secret)}); err != nil {
		t.Fatal(err)
	}
	checker := lifecycle.DNS{Resolver: resolver, Timeout: time.Second, Now: clk.Now,
		NameServerAddr: func(string, netip.Addr) string { return bind }}
	sched, err := lifecycle.NewScheduler(lifecycle.SchedulerOptions{
		Store: db, Checker: checker, Service: svcs.Lifecycle,
		Publisher: delegation.Publisher{Secret: svcs.Lifecycle.TSIGSecret, TTL: 1},
		RecordTTL: 30 * time.Second, StuckAfter: 5 * time.Minute,
		Spec: keys.Spec{Algorithm: keys.Ed25519}, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	order := rotate(t, ctx, clk, sched, svcs.Keys, db, pol, resolver, 80, func() error { return nil })
	if len(order) < 3 {
		t.Fatalf("keys that signed, in turn: %v; want the first and two rotations", order)
	}
	// The first key's record is gone from the customer's server: its
	// signatures expired long ago.
	first := strings.SplitN(order[0], "#", 2)[0]
	m := new(dns.Msg)
	m.SetQuestion(first+"._domainkey."+rotCust+".", dns.TypeTXT)
	in, err := dns.Exchange(m, bind)
	if err != nil {
		t.Fatal(err)
	}
	if in.Rcode != dns.RcodeNameError {
		t.Errorf("the first key's record at BIND: %s %v, want NXDOMAIN", dns.RcodeToString[in.Rcode], in.Answer)
	}
	if st := sched.Status(); len(st) != 1 || st[0].Blocked {
		t.Errorf("rotation status: %+v", st)
	}
}
