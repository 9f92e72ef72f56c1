package dnscheck

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
)

// TestCheckStatus starts from a published record that matches and changes
// one thing per row. Every server (resolver and both authoritative servers)
// serves the same records, so the overall status is the per-server one.
func TestCheckStatus(t *testing.T) {
	k := loadKeys(t)
	good := value(t, k.rsa)
	p := pOf(t, k.rsa)
	for _, tc := range []struct {
		name    string
		records []dns.RR
		key     crypto.PublicKey // nil: k.rsa; use noKey for none
		expect  Expect
		want    Status
		wantOK  bool
		detail  string // a part of the resolver's detail, "" for any
	}{
		{name: "valid: split at 255 bytes (RFC 6376 §3.6.2.2)", records: []dns.RR{txt(good)}, want: StatusMatch, wantOK: true, detail: "RSA 2048-bit"},
		{name: "valid: one string per tag", records: []dns.RR{dnstest.TXT(testName, "v=DKIM1; ", "k=rsa; ", "p="+p[:200], p[200:])}, want: StatusMatch, wantOK: true},
		{name: "valid: white space inside p= (RFC 6376 §3.6.1 allows FWS)", records: []dns.RR{txt("v=DKIM1; k=rsa; p=" + p[:100] + " " + p[100:300] + "\t" + p[300:])}, want: StatusMatch, wantOK: true},
		{name: "valid: no v=, no k= (both optional)", records: []dns.RR{txt("p=" + p)}, want: StatusMatch, wantOK: true},
		{name: "valid: PKCS#1 instead of SPKI is the same key", records: []dns.RR{txt("v=DKIM1; k=rsa; p=" + pkcs1(t, k.rsa))}, want: StatusMatch, wantOK: true},
		{name: "valid: 4096-bit key in several strings", records: []dns.RR{txt(value(t, k.rsa4096))}, key: k.rsa4096, want: StatusMatch, wantOK: true, detail: "4096-bit"},
		{name: "valid: Ed25519 (RFC 8463)", records: []dns.RR{txt(value(t, k.ed))}, key: k.ed, want: StatusMatch, wantOK: true, detail: "Ed25519"},
		{name: "valid: t=y testing", records: []dns.RR{txt("v=DKIM1; k=rsa; t=y; p=" + p)}, want: StatusMatch, wantOK: true},
		{name: "no key given: report what is published", records: []dns.RR{txt(good)}, key: noKey, want: StatusPublished, wantOK: true},

		{name: "NXDOMAIN", records: nil, want: StatusNotFound, detail: "no TXT record"},
		{name: "name exists, no TXT (NODATA)", records: []dns.RR{dnstest.A(testName, "192.0.2.1")}, want: StatusNotFound},
		{name: "only a TXT record that is not DKIM", records: []dns.RR{dnstest.TXT(testName, "google-site-verification=abc")}, want: StatusNotFound, detail: "google-site-verification"},
		{name: "a different key", records: []dns.RR{txt(value(t, k.other))}, want: StatusWrongKey, detail: "expected RSA 2048-bit"},
		{name: "a different key type", records: []dns.RR{txt(value(t, k.ed))}, want: StatusWrongKey, detail: "Ed25519"},

		{name: "cut at 255 by the DNS host (RFC 1035 §3.3)", records: []dns.RR{dnstest.TXT(testName, good[:255])}, want: StatusTruncated, detail: "exactly 255"},
		{name: "p= cut short at a base64 boundary", records: []dns.RR{txt("v=DKIM1; k=rsa; p=" + p[:300])}, want: StatusTruncated, detail: "first 300 of"},
		{name: "p= cut short, not base64", records: []dns.RR{txt("v=DKIM1; k=rsa; p=" + p[:301])}, want: StatusTruncated},
		{name: "p= damaged, no key to compare", records: []dns.RR{txt("v=DKIM1; k=rsa; p=" + p[:300])}, key: noKey, want: StatusTruncated, detail: "does not decode"},

		{name: "zone-file quotes pasted as one value", records: []dns.RR{txt(`"v=DKIM1; k=rsa; " "p=` + p + `"`)}, want: StatusStrayCharacters, detail: "without them the record would be right"},
		{name: "dig's \\; escapes pasted", records: []dns.RR{txt(`v=DKIM1\; k=rsa\; p=` + p)}, want: StatusStrayCharacters, detail: `\;`},
		{name: "escaped quote pasted", records: []dns.RR{txt(`\"v=DKIM1; k=rsa; p=` + p + `\"`)}, want: StatusStrayCharacters, detail: `\"`},
		{name: "no-break space inside p=", records: []dns.RR{txt("v=DKIM1; k=rsa; p=" + p[:100] + "\u00a0" + p[100:])}, want: StatusStrayCharacters, detail: "U+00A0"},
		{name: "zone-file parentheses pasted", records: []dns.RR{txt("( v=DKIM1; k=rsa; p=" + p + " )")}, want: StatusStrayCharacters, detail: "parenthesis"},
		{name: "curly quotes from a word processor", records: []dns.RR{txt("“v=DKIM1; k=rsa; p=" + p + "”")}, want: StatusStrayCharacters, detail: "curly quote"},

		{name: "two records, one right (RFC 6376 §3.6.2.2)", records: []dns.RR{txt(good), txt(value(t, k.other))}, want: StatusMultipleRecords, detail: "match; 2) \"…"},
		{name: "two records, same value twice", records: []dns.RR{txt(good), txt(good + ";")}, want: StatusMultipleRecords},
		{name: "a DKIM and a non-DKIM TXT record", records: []dns.RR{txt(good), dnstest.TXT(testName, "v=spf1 -all")}, want: StatusMatch, wantOK: true},

		{name: "v=DKIM2 (RFC 6376 §3.6.1)", records: []dns.RR{txt("v=DKIM2; k=rsa; p=" + p)}, want: StatusBadTags, detail: "v=DKIM2"},
		{name: "v= not first", records: []dns.RR{txt("k=rsa; v=DKIM1; p=" + p)}, want: StatusBadTags, detail: "first"},
		{name: "no p=", records: []dns.RR{txt("v=DKIM1; k=rsa")}, want: StatusBadTags, detail: "no p="},
		{name: "k=ed25519 with an RSA key", records: []dns.RR{txt("v=DKIM1; k=ed25519; p=" + p)}, want: StatusBadTags, detail: "k= is ed25519"},
		{name: "Ed25519 key without k=", records: []dns.RR{txt("v=DKIM1; p=" + pOf(t, k.ed))}, key: k.ed, want: StatusBadTags, detail: "k= is missing"},
		{name: "unknown k=", records: []dns.RR{txt("v=DKIM1; k=dsa; p=" + p)}, want: StatusBadTags, detail: "k=dsa"},
		{name: "h=sha1 only (RFC 8301)", records: []dns.RR{txt("v=DKIM1; k=rsa; h=sha1; p=" + p)}, want: StatusBadTags, detail: "sha256"},
		{name: "s= not email", records: []dns.RR{txt("v=DKIM1; k=rsa; s=tlsrpt; p=" + p)}, want: StatusBadTags},
		{name: "RSA 512 (RFC 8301 §3.2)", records: []dns.RR{txt("v=DKIM1; k=rsa; p=" + k.rsa512)}, want: StatusWeakKey},

		{name: "revoked while a key is expected", records: []dns.RR{txt("v=DKIM1; k=rsa; p=")}, want: StatusRevoked},
		{name: "revoked, as expected", records: []dns.RR{txt("v=DKIM1; k=rsa; p=")}, expect: ExpectRevoked, want: StatusRevoked, wantOK: true},
		{name: "revoked expected, no key given", records: []dns.RR{txt("v=DKIM1; p=")}, key: noKey, expect: ExpectRevoked, want: StatusRevoked, wantOK: true},
		{name: "revoked expected, key still there", records: []dns.RR{txt(good)}, expect: ExpectRevoked, want: StatusStillPublished},
		{name: "revoked expected, record gone", records: nil, expect: ExpectRevoked, want: StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = k.rsa
			} else if key == noKey {
				key = nil
			}
			w := startWorld(t, nil, nil, exampleZone(tc.records...))
			o := w.options(key)
			o.Expect = tc.expect
			r := check(t, o)
			if r.Status != tc.want || r.OK != tc.wantOK {
				t.Fatalf("status %s ok=%v, want %s ok=%v\n%s", r.Status, r.OK, tc.want, tc.wantOK, dump(r))
			}
			if len(r.Servers) != 2 {
				t.Fatalf("%d server results, want 2\n%s", len(r.Servers), dump(r))
			}
			for _, s := range append(r.Servers, r.Resolver) {
				if s.Status != tc.want {
					t.Errorf("%s: status %s, want %s", s.Server, s.Status, tc.want)
				}
			}
			if !strings.Contains(r.Resolver.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", r.Resolver.Detail, tc.detail)
			}
			if !tc.wantOK && len(r.Advice) == 0 {
				t.Errorf("no advice for %s\n%s", r.Status, dump(r))
			}
			if got := r.ExitCode(); (got == 0) != tc.wantOK {
				t.Errorf("exit code %d with ok=%v", got, tc.wantOK)
			}
		})
	}
}

// noKey in a table row means Options.PublicKey nil.
var noKey crypto.PublicKey = struct{ noKey bool }{}

func pkcs1(t testing.TB, k crypto.PublicKey) string {
	t.Helper()
	der := x509MarshalPKCS1(k)
	return der
}

// TestCheckDisagree covers authoritative servers that do not agree with
// each other or with the resolver's cache.
func TestCheckDisagree(t *testing.T) {
	k := loadKeys(t)
	good, old := txt(value(t, k.rsa)), txt(value(t, k.other))
	twoServers := func(ns1, ns2 []dns.RR) zone {
		return zone{name: testDomain, servers: []ns{
			{host: "ns1.example.com", records: ns1},
			{host: "ns2.example.com", records: ns2},
		}}
	}
	for _, tc := range []struct {
		name     string
		resolver []dns.RR
		zone     zone
		want     Status
		advice   string // part of the advice
	}{
		{
			name:     "ns2 does not have it yet",
			resolver: []dns.RR{good},
			zone:     twoServers([]dns.RR{good}, nil),
			want:     StatusPropagating,
			advice:   "Not yet on: ns2.example.com",
		},
		{
			name:     "ns2 still has the old key",
			resolver: []dns.RR{good},
			zone:     twoServers([]dns.RR{good}, []dns.RR{old}),
			want:     StatusPropagating,
			advice:   "ns2.example.com 127.0.0.1",
		},
		{
			name:     "resolver still caches the old key",
			resolver: []dns.RR{old},
			zone:     twoServers([]dns.RR{good}, []dns.RR{good}),
			want:     StatusPropagating,
			advice:   "from its cache, for up to 300 seconds",
		},
		{
			name:     "only the resolver's cache is still right",
			resolver: []dns.RR{good},
			zone:     twoServers(nil, nil),
			want:     StatusNotFound,
			advice:   "from its cache, but no authoritative server",
		},
		{
			name:     "none right, servers differ",
			resolver: []dns.RR{old},
			zone:     twoServers([]dns.RR{old}, nil),
			want:     StatusWrongKey,
			advice:   "do not agree",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startWorld(t, tc.resolver, nil, tc.zone)
			r := check(t, w.options(k.rsa))
			if r.Status != tc.want || r.OK {
				t.Fatalf("status %s ok=%v, want %s\n%s", r.Status, r.OK, tc.want, dump(r))
			}
			if advice := strings.Join(r.Advice, "\n"); !strings.Contains(advice, tc.advice) {
				t.Errorf("advice does not say %q:\n%s", tc.advice, advice)
			}
		})
	}
}

// TestCheckCNAME covers record names that are aliases, within the zone and
// to a provider's zone with its own name servers.
func TestCheckCNAME(t *testing.T) {
	k := loadKeys(t)
	good := value(t, k.rsa)
	const target = "sel.dkim.provider.net"
	provider := func(recs ...dns.RR) zone {
		return zone{name: "provider.net", records: recs, servers: []ns{{host: "ns.provider.net"}, {host: "ns2.provider.net"}}}
	}
	for _, tc := range []struct {
		name      string
		zones     []zone
		maxCNAMEs int
		want      Status
		chain     string // the resolver's chain, joined by spaces
		detail    string
	}{
		{
			name:  "to a provider's matching record",
			zones: []zone{exampleZone(dnstest.CNAME(testName, target)), provider(dnstest.TXT(target, dkim.SplitTXT(good)...))},
			want:  StatusMatch,
			chain: testName + " " + target,
		},
		{
			name: "two hops within the zone, then to the provider",
			zones: []zone{
				exampleZone(dnstest.CNAME(testName, "a.example.com"), dnstest.CNAME("a.example.com", target)),
				provider(dnstest.TXT(target, dkim.SplitTXT(good)...)),
			},
			want:  StatusMatch,
			chain: testName + " a.example.com " + target,
		},
		{
			name:  "to a provider's different key",
			zones: []zone{exampleZone(dnstest.CNAME(testName, target)), provider(txtAt(target, value(t, k.other)))},
			want:  StatusWrongKey,
		},
		{
			name:   "to nowhere (NXDOMAIN)",
			zones:  []zone{exampleZone(dnstest.CNAME(testName, target)), provider()},
			want:   StatusCNAMEDangling,
			detail: "does not exist",
		},
		{
			name:   "to a name without TXT",
			zones:  []zone{exampleZone(dnstest.CNAME(testName, target)), provider(dnstest.A(target, "192.0.2.1"))},
			want:   StatusCNAMEDangling,
			detail: "no TXT",
		},
		{
			name:   "to nowhere within the zone",
			zones:  []zone{exampleZone(dnstest.CNAME(testName, "gone.example.com"))},
			want:   StatusCNAMEDangling,
			detail: "gone.example.com",
		},
		{
			name:   "a loop within the zone",
			zones:  []zone{exampleZone(dnstest.CNAME(testName, "a.example.com"), dnstest.CNAME("a.example.com", testName))},
			want:   StatusCNAMELoop,
			detail: "circle",
		},
		{
			name: "a loop across zones",
			zones: []zone{
				exampleZone(dnstest.CNAME(testName, target)),
				provider(dnstest.CNAME(target, testName)),
			},
			want:   StatusCNAMELoop,
			detail: "circle",
		},
		{
			name: "longer than MaxCNAMEs",
			zones: []zone{
				exampleZone(dnstest.CNAME(testName, "a.example.com"), dnstest.CNAME("a.example.com", "b.example.com"), dnstest.CNAME("b.example.com", target)),
				provider(txtAt(target, good)),
			},
			maxCNAMEs: 2,
			want:      StatusCNAMELoop,
			detail:    "more than 2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startWorld(t, nil, nil, tc.zones...)
			o := w.options(k.rsa)
			o.MaxCNAMEs = tc.maxCNAMEs
			r := check(t, o)
			if r.Status != tc.want {
				t.Fatalf("status %s, want %s\n%s", r.Status, tc.want, dump(r))
			}
			for _, s := range append(r.Servers, r.Resolver) {
				if s.Status != tc.want {
					t.Errorf("%s %s for %s: status %s, want %s\n%s", s.Server, s.Address, s.Name, s.Status, tc.want, dump(r))
				}
			}
			if tc.chain != "" {
				if got := strings.Join(r.CNAMEChain, " "); got != tc.chain {
					t.Errorf("chain %q, want %q", got, tc.chain)
				}
			}
			if !strings.Contains(r.Resolver.Detail, tc.detail) {
				t.Errorf("resolver detail %q does not contain %q", r.Resolver.Detail, tc.detail)
			}
		})
	}
}

func txtAt(name, v string) dns.RR { return dnstest.TXT(name, dkim.SplitTXT(v)...) }

// TestCheckTemporary checks that DNS failures are reported as temporary,
// never as a wrong record, and that they stay short.
func TestCheckTemporary(t *testing.T) {
	k := loadKeys(t)
	good := txt(value(t, k.rsa))
	fault := func(f dnstest.Fault) map[string]dnstest.Fault { return map[string]dnstest.Fault{testName: f} }
	for _, tc := range []struct {
		name     string
		resolver map[string]dnstest.Fault
		ns2      map[string]dnstest.Fault
		want     Status
		ns2Want  Status
		detail   string // part of ns2's detail
	}{
		{name: "all answer", want: StatusMatch, ns2Want: StatusMatch},
		{name: "ns2 SERVFAIL", ns2: fault(dnstest.ServFail), want: StatusTemporary, ns2Want: StatusTemporary, detail: "SERVFAIL"},
		{name: "ns2 REFUSED (lame)", ns2: fault(dnstest.Refused), want: StatusTemporary, ns2Want: StatusTemporary, detail: "lame"},
		{name: "ns2 times out", ns2: fault(dnstest.Timeout), want: StatusTemporary, ns2Want: StatusTemporary, detail: "timeout"},
		{name: "resolver SERVFAIL", resolver: fault(dnstest.ServFail), want: StatusTemporary, ns2Want: StatusMatch},
		{name: "resolver times out", resolver: fault(dnstest.Timeout), want: StatusTemporary},
		{name: "resolver times out for everything", resolver: map[string]dnstest.Fault{"*": dnstest.Timeout}, want: StatusTemporary},
		{name: "ns2 truncates: TCP", ns2: fault(dnstest.Truncate), want: StatusMatch, ns2Want: StatusMatch, detail: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := zone{name: testDomain, records: []dns.RR{good}, servers: []ns{
				{host: "ns1.example.com"}, {host: "ns2.example.com", faults: tc.ns2},
			}}
			w := startWorld(t, nil, tc.resolver, z)
			r := check(t, w.options(k.rsa))
			if r.Status != tc.want {
				t.Fatalf("status %s, want %s\n%s", r.Status, tc.want, dump(r))
			}
			if r.Status == StatusTemporary && (r.OK || r.ExitCode() == 0 || len(r.Advice) == 0) {
				t.Errorf("temporary failure: ok=%v exit=%d advice=%q", r.OK, r.ExitCode(), r.Advice)
			}
			var ns2 *ServerResult
			for i, s := range r.Servers {
				if s.Server == "ns2.example.com" {
					ns2 = &r.Servers[i]
				}
			}
			if tc.ns2Want == "" {
				// The resolver could not say which servers to ask.
				if ns2 != nil || len(r.Servers) != 1 || r.Servers[0].Status != StatusTemporary {
					t.Errorf("servers asked without a resolver:\n%s", dump(r))
				}
				return
			}
			if ns2 == nil {
				t.Fatalf("no result for ns2\n%s", dump(r))
			}
			if ns2.Status != tc.ns2Want || !strings.Contains(ns2.Detail, tc.detail) {
				t.Errorf("ns2: %s %q, want %s with %q", ns2.Status, ns2.Detail, tc.ns2Want, tc.detail)
			}
		})
	}
}

// TestCheckTruncatedOverTCP serves a 4096-bit key record with the TC bit
// on UDP and checks that it is read whole over TCP.
func TestCheckTruncatedOverTCP(t *testing.T) {
	k := loadKeys(t)
	v := value(t, k.rsa4096)
	faults := map[string]dnstest.Fault{testName: dnstest.Truncate}
	w := startWorld(t, nil, faults, zone{name: testDomain, records: []dns.RR{txt(v)}, servers: []ns{
		{host: "ns1.example.com", faults: faults},
	}})
	r := check(t, w.options(k.rsa4096))
	if r.Status != StatusMatch {
		t.Fatalf("status %s\n%s", r.Status, dump(r))
	}
	for _, s := range append(r.Servers, r.Resolver) {
		if !s.TCP || len(s.Records) != 1 || s.Records[0].Value != v || len(s.Records[0].Strings) != len(dkim.SplitTXT(v)) {
			t.Errorf("%s: tcp=%v records=%+v", s.Server, s.TCP, s.Records)
		}
	}
	if _, tcp := w.servers["ns1.example.com."].Queries(); tcp != 1 {
		t.Errorf("ns1 answered %d TCP queries, want 1", tcp)
	}
}

// TestCheckFindsZoneWithoutAuthority: some resolvers (systemd-resolved)
// strip the authority section, so the zone is found by walking up.
func TestCheckZoneAtApex(t *testing.T) {
	k := loadKeys(t)
	// The domain is a subdomain of the zone: mail.example.com.
	name := dkim.RecordName(testSelector, "mail.example.com")
	w := startWorld(t, nil, nil, zone{name: testDomain, records: []dns.RR{txtAt(name, value(t, k.rsa))}, servers: []ns{{host: "ns1.example.com"}}})
	o := w.options(k.rsa)
	o.Domain = "mail.example.com."
	r := check(t, o)
	if r.Status != StatusMatch || r.Zone != "example.com" || r.Name != name {
		t.Fatalf("status %s zone %q name %q\n%s", r.Status, r.Zone, r.Name, dump(r))
	}
}

func TestCheckResolverOnly(t *testing.T) {
	k := loadKeys(t)
	w := startWorld(t, nil, nil, exampleZone(txt(value(t, k.rsa))))
	o := w.options(k.rsa)
	o.ResolverOnly = true
	r := check(t, o)
	if r.Status != StatusMatch || len(r.Servers) != 0 || r.Zone != "" {
		t.Fatalf("status %s, %d servers\n%s", r.Status, len(r.Servers), dump(r))
	}
}

// TestResolvers reads resolv.conf when no resolver is given, and adds
// port 53 to a bare host.
func TestResolvers(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nnameserver 127.0.0.2\nnameserver ::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, conf, want string }{
		{"", conf, "127.0.0.2:53 [::1]:53"},
		{"192.0.2.1:5353", conf, "192.0.2.1:5353"},
		{"192.0.2.1", "", "192.0.2.1:53"},
		{"2001:db8::1", "", "[2001:db8::1]:53"},
		{"[2001:db8::1]", "", "[2001:db8::1]:53"},
	} {
		got, err := resolvers(tc.addr, tc.conf)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("resolvers(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
}

func TestCheckOptionsErrors(t *testing.T) {
	k := loadKeys(t)
	base := Options{Domain: testDomain, Selector: testSelector, PublicKey: k.rsa, Resolver: "127.0.0.1:1"}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   error
	}{
		{"no domain", func(o *Options) { o.Domain = "" }, ErrOptions},
		{"domain with a space", func(o *Options) { o.Domain = "exa mple.com" }, ErrOptions},
		{"no selector", func(o *Options) { o.Selector = "" }, ErrOptions},
		{"selector with an underscore label", func(o *Options) { o.Selector = "a_b" }, ErrOptions},
		{"unsupported key type", func(o *Options) { o.PublicKey = "not a key" }, ErrOptions},
		{"no resolv.conf", func(o *Options) { o.Resolver, o.ResolvConf = "", filepath.Join(t.TempDir(), "none") }, ErrNoResolver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.change(&o)
			if _, err := Check(context.Background(), o); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCheckCancelled returns the context's error, not a report.
func TestCheckCancelled(t *testing.T) {
	k := loadKeys(t)
	w := startWorld(t, nil, map[string]dnstest.Fault{"*": dnstest.Timeout}, exampleZone())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, w.options(k.rsa)); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// TestReportJSON checks the stable JSON names the API relies on.
func TestReportJSON(t *testing.T) {
	k := loadKeys(t)
	w := startWorld(t, nil, nil, exampleZone(dnstest.CNAME(testName, "x.example.com"), txtAt("x.example.com", value(t, k.rsa))))
	r := check(t, w.options(k.rsa))
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"domain", "selector", "name", "expect", "expected", "status", "ok", "summary", "cname_chain", "resolver", "zone", "servers", "checked_at"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON has no %q: %s", key, b)
		}
	}
	if m["status"] != "match" || m["expect"] != "key" || m["ok"] != true {
		t.Errorf("status %v expect %v ok %v", m["status"], m["expect"], m["ok"])
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Status != r.Status || back.Expect != r.Expect || len(back.Servers) != len(r.Servers) {
		t.Errorf("report does not read back: %v %+v", err, back)
	}
	srv := m["servers"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "server", "address", "status", "records"} {
		if _, ok := srv[key]; !ok {
			t.Errorf("server JSON has no %q: %v", key, srv)
		}
	}
}

// TestWriteText checks the text a person reads: the table lines up and
// the advice is there.
func TestWriteText(t *testing.T) {
	k := loadKeys(t)
	w := startWorld(t, nil, nil, zone{name: testDomain, servers: []ns{
		{host: "ns1.example.com", records: []dns.RR{txt(value(t, k.rsa))}},
		{host: "ns2.example.com"},
	}})
	r := check(t, w.options(k.rsa))
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Record:    " + testName,
		"Status:    propagating (not OK)",
		"SERVER",
		"ns2.example.com",
		"Values seen:",
		"What to do:",
		"Checked at 2026-03-01T12:00:00Z.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The STATUS column starts at the same offset on every table line.
	lines := strings.Split(out, "\n")
	col := -1
	for _, l := range lines {
		if strings.HasPrefix(l, "SERVER") {
			col = strings.Index(l, "STATUS")
		}
	}
	for _, l := range lines {
		for _, st := range []string{" match ", " not_found ", " propagating "} {
			if i := strings.Index(l, st); i >= 0 && !strings.HasPrefix(l, "Summary") && !strings.HasPrefix(l, "Status") && i+1 != col {
				t.Errorf("status column at %d, header at %d: %q", i+1, col, l)
			}
		}
	}
}
