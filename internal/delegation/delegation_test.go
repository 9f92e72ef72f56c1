package delegation

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
	"github.com/dkimd/dkimd/internal/dnsserver"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/store/storetest"
)

const (
	zone = "dkim.provider.example"
	cust = "customer.example"
)

type world struct {
	db      *sqlite.DB
	dom     store.Domain
	srv     *dnsserver.Server
	srvAddr string
	mk      *keys.MasterKey
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	name, err := NewName(zone, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddDomain(ctx, store.Domain{Name: cust}); err != nil {
		t.Fatal(err)
	}
	dom, err := db.UpdateDomain(ctx, store.Domain{Name: cust, Publish: store.PublishDelegated, DelegatedName: name})
	if err != nil {
		t.Fatal(err)
	}
	// A manual domain's keys are not served.
	if _, err := db.AddDomain(ctx, store.Domain{Name: "manual.example"}); err != nil {
		t.Fatal(err)
	}
	srv, err := dnsserver.New(dnsserver.Options{Zone: zone, NameServers: []dnsserver.NameServer{{Name: "ns1." + zone, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	addr, wait, err := srv.Listen(cctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); wait() })
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &world{db: db, dom: dom, srv: srv, srvAddr: addr.String(), mk: mk}
}

func (w *world) key(t *testing.T, domain, sel string, states ...store.KeyState) store.Key {
	t.Helper()
	nk, err := storetest.NewKey(w.mk, domain, sel, keys.Spec{Algorithm: keys.Ed25519})
	if err != nil {
		t.Fatal(err)
	}
	k, err := w.db.CreateKey(context.Background(), nk)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if k, err = w.db.SetKeyState(context.Background(), k.ID, st); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// TestSource serves from the store: each delegated key not archived at its
// target, a revoked key as an empty p=, nothing for manual domains.
func TestSource(t *testing.T) {
	w := newWorld(t)
	active := w.key(t, cust, "s1", store.KeyActive)
	w.key(t, cust, "s2", store.KeyRevoked)
	w.key(t, "manual.example", "s1")
	ctx := context.Background()
	if err := w.srv.Refresh(ctx, Source{Store: w.db, Zone: zone}); err != nil {
		t.Fatal(err)
	}
	ask := func(name string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		in, err := dns.Exchange(m, w.srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	want, _, _ := Value(active)
	in := ask(Target(w.dom, "s1"))
	if len(in.Answer) != 1 || strings.Join(in.Answer[0].(*dns.TXT).Txt, "") != want {
		t.Errorf("active key at s1: %v", in.Answer)
	}
	in = ask(Target(w.dom, "s2"))
	if len(in.Answer) != 1 || strings.Join(in.Answer[0].(*dns.TXT).Txt, "") != "v=DKIM1; k=ed25519; p=" {
		t.Errorf("revoked key at s2: %v", in.Answer)
	}
	// Archive s2: its name goes away.
	k2, _ := w.db.KeyBySelector(ctx, cust, "s2")
	if _, err := w.db.SetKeyState(ctx, k2.ID, store.KeyArchived); err != nil {
		t.Fatal(err)
	}
	if err := w.srv.Refresh(ctx, Source{Store: w.db, Zone: zone}); err != nil {
		t.Fatal(err)
	}
	if in := ask(Target(w.dom, "s2")); in.Rcode != dns.RcodeNameError {
		t.Errorf("archived key's name: %s", dns.RcodeToString[in.Rcode])
	}
	// Another zone's source serves none of them.
	recs, err := Source{Store: w.db, Zone: "other.example"}.ZoneRecords(ctx)
	if err != nil || len(recs) != 0 {
		t.Errorf("other zone: %v %v", recs, err)
	}
}

// TestCheckCNAMEs checks the customer's CNAMEs at their name servers: right,
// missing, pointing elsewhere, a TXT record instead.
func TestCheckCNAMEs(t *testing.T) {
	w := newWorld(t)
	active := w.key(t, cust, "s1", store.KeyActive)
	ctx := context.Background()
	if err := w.srv.Refresh(ctx, Source{Store: w.db, Zone: zone}); err != nil {
		t.Fatal(err)
	}
	val, _, _ := Value(active)
	s1, s2 := "s1._domainkey."+cust, "s2._domainkey."+cust
	for _, tc := range []struct {
		name    string
		records []dns.RR
		ok      [2]bool
		problem string
	}{
		{"both CNAMEs right", []dns.RR{dnstest.CNAME(s1, Target(w.dom, "s1")), dnstest.CNAME(s2, Target(w.dom, "s2"))}, [2]bool{true, true}, ""},
		{"s2 missing", []dns.RR{dnstest.CNAME(s1, Target(w.dom, "s1"))}, [2]bool{true, false}, "no CNAME at " + s2},
		{"s2 points elsewhere", []dns.RR{dnstest.CNAME(s1, Target(w.dom, "s1")), dnstest.CNAME(s2, "s2.wrong."+zone)}, [2]bool{true, false}, "points at s2.wrong." + zone},
		{"s1 a TXT record", []dns.RR{dnstest.TXT(s1, val), dnstest.CNAME(s2, Target(w.dom, "s2"))}, [2]bool{false, true}, "is a TXT record"},
		{"s1 to s2's target: the chain leads to no key", []dns.RR{dnstest.CNAME(s1, Target(w.dom, "s2")), dnstest.CNAME(s2, Target(w.dom, "s2"))}, [2]bool{false, true}, "instead of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			common := []dns.RR{dnstest.SOA(cust), dnstest.NS(cust, "ns1."+cust), dnstest.A("ns1."+cust, "127.0.0.1")}
			custNS := dnstest.NewServer(t, dnstest.Zone{Authoritative: true, Records: append(common, tc.records...)})
			resolver := dnstest.NewServer(t, dnstest.Zone{Records: append(append(common, tc.records...),
				dnstest.SOA(zone), dnstest.NS(zone, "ns1."+zone), dnstest.A("ns1."+zone, "127.0.0.1"),
				dnstest.TXT(Target(w.dom, "s1"), val))})
			base := dnscheck.Options{Resolver: resolver.Addr(), Timeout: time.Second,
				NameServerAddr: func(host string, _ netip.Addr) string {
					if strings.HasSuffix(dns.CanonicalName(host), zone+".") {
						return w.srvAddr
					}
					return custNS.Addr()
				}}
			ks, _ := w.db.ListKeys(ctx, store.KeyFilter{Domain: cust})
			got, err := CheckCNAMEs(ctx, base, w.dom, ks)
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for i, c := range got {
				if c.OK != tc.ok[i] {
					t.Errorf("%s: OK %v, want %v: %v", c.Selector, c.OK, tc.ok[i], c.Problems)
				}
				all = append(all, c.Problems...)
			}
			if tc.problem != "" && !strings.Contains(strings.Join(all, "\n"), tc.problem) {
				t.Errorf("problems %q lack %q", all, tc.problem)
			}
		})
	}
}
