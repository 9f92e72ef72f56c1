package dnscheck

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
)

// Errors returned by Check. DNS failures are not errors: they are reported
// as StatusTemporary in the Report.
var (
	// ErrOptions means Options are unusable: no or a malformed domain or
	// selector, or a public key of an unsupported type.
	ErrOptions = errors.New("dnscheck: invalid options")
	// ErrNoResolver means no resolver was given and none could be read
	// from resolv.conf.
	ErrNoResolver = errors.New("dnscheck: no DNS resolver")
)

// Expect says what state the record should be in.
type Expect int

const (
	// ExpectKey, the zero value: the record publishes Options.PublicKey
	// (or, when it is nil, any valid key).
	ExpectKey Expect = iota
	// ExpectRevoked: the record has an empty p=, revoking the key
	// (RFC 6376 §3.6.1). A record still holding the key is
	// StatusStillPublished.
	ExpectRevoked
)

// MarshalText gives "key" or "revoked".
func (e Expect) MarshalText() ([]byte, error) {
	if e == ExpectRevoked {
		return []byte("revoked"), nil
	}
	return []byte("key"), nil
}

// UnmarshalText reads "key" or "revoked", so that a stored Report reads
// back.
func (e *Expect) UnmarshalText(b []byte) error {
	switch string(b) {
	case "key", "":
		*e = ExpectKey
	case "revoked":
		*e = ExpectRevoked
	default:
		return fmt.Errorf("%w: expect %q (want key or revoked)", ErrOptions, b)
	}
	return nil
}

// Defaults used for zero Options fields.
const (
	DefaultTimeout    = 2 * time.Second
	DefaultMaxCNAMEs  = 8
	DefaultResolvConf = "/etc/resolv.conf"
)

// Options says what to check and how. The zero value of each field is
// documented beside it; Domain and Selector are required.
type Options struct {
	// Domain is the signing domain (d=), Selector the selector (s=).
	Domain, Selector string
	// PublicKey is the key the record should publish: *rsa.PublicKey or
	// ed25519.PublicKey (a private key is taken for its public half). Nil
	// means report what is published without comparing.
	PublicKey crypto.PublicKey
	// Expect is the state the record should be in; zero is ExpectKey.
	Expect Expect
	// Resolver is the recursive resolver to ask, HOST:PORT (a bare host
	// means port 53). Empty means the name servers of ResolvConf, tried in
	// order.
	Resolver string
	// ResolvConf is read when Resolver is empty; empty means
	// /etc/resolv.conf.
	ResolvConf string
	// ResolverOnly skips asking the authoritative name servers directly.
	// False (the zero value) asks every one of them.
	ResolverOnly bool
	// Timeout bounds each attempt of each query; a UDP query is tried
	// twice. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxCNAMEs is the longest chain of aliases followed; zero means
	// DefaultMaxCNAMEs.
	MaxCNAMEs int
	// NameServerAddr gives the HOST:PORT at which to query an
	// authoritative name server, given its name and one of its addresses.
	// Nil means that address on port 53, as in real DNS. It exists for
	// tests, whose name servers (dnstest) listen on random ports of
	// 127.0.0.1; production code leaves it nil.
	NameServerAddr func(host string, ip netip.Addr) string
	// Now is the clock for Report.CheckedAt; nil means time.Now.
	Now func() time.Time
}

// Check looks up the key record for Options.Selector and Options.Domain
// through the resolver and at every authoritative name server, and reports
// what it found and what to do. It returns an error only for unusable
// Options or a cancelled context; DNS failures are in the Report.
func Check(ctx context.Context, o Options) (*Report, error) {
	domain := strings.ToLower(strings.TrimSuffix(o.Domain, "."))
	selector := strings.ToLower(o.Selector)
	if !dkim.ValidDomain(domain) {
		return nil, fmt.Errorf("%w: domain %q", ErrOptions, o.Domain)
	}
	if !dkim.ValidSelector(selector) {
		return nil, fmt.Errorf("%w: selector %q", ErrOptions, o.Selector)
	}
	name := dkim.RecordName(selector, domain)
	exp, err := newExpectation(&o, name)
	if err != nil {
		return nil, err
	}
	c := &checker{o: &o, exp: exp, timeout: o.Timeout, maxCNAMEs: o.MaxCNAMEs}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxCNAMEs <= 0 {
		c.maxCNAMEs = DefaultMaxCNAMEs
	}
	if c.resolvers, err = resolvers(o.Resolver, o.ResolvConf); err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	r := &Report{
		Domain:    domain,
		Selector:  selector,
		Name:      name,
		Expect:    o.Expect,
		Expected:  exp.value,
		CheckedAt: now().UTC(),
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.Resolver, r.CNAMEChain = c.recursive(ctx, name) })
	if !o.ResolverOnly {
		wg.Go(func() { r.Zone, r.Servers = c.authoritative(ctx, name, 0, nil, false) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dnscheck: %w", err)
	}
	c.summarize(r)
	return r, nil
}

// resolvers gives the recursive resolvers to ask, in order.
func resolvers(addr, conf string) ([]string, error) {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
		}
		return []string{addr}, nil
	}
	if conf == "" {
		conf = DefaultResolvConf
	}
	cc, err := dns.ClientConfigFromFile(conf)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoResolver, err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("%w: no nameserver in %s", ErrNoResolver, conf)
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

// checker holds one check's settings.
type checker struct {
	o         *Options
	exp       *expectation
	timeout   time.Duration
	maxCNAMEs int
	resolvers []string
}

// recursive asks the resolver for the record, following CNAMEs the resolver
// did not follow itself, and returns its result and the alias chain from the
// record name on.
func (c *checker) recursive(ctx context.Context, name string) (ServerResult, []string) {
	res := ServerResult{Name: name, Server: "resolver", Address: c.resolvers[0]}
	full := []string{name}
	cur := name
	for {
		in, tcp, addr, err := c.resolve(ctx, cur, dns.TypeTXT)
		res.Address, res.TCP = addr, res.TCP || tcp
		if err != nil {
			res.temporary(err)
			return res, chainOrNil(full)
		}
		ch := walk(in, cur)
		for _, a := range ch.aliases {
			full = append(full, strings.TrimSuffix(a, "."))
		}
		res.CNAMEs = full[1:]
		res.Rcode = dns.RcodeToString[in.Rcode]
		switch {
		case ch.loop || len(full)-1 > c.maxCNAMEs:
			res.setFinding(c.loop(full, ch.loop))
		case len(ch.txt) > 0 || in.Rcode == dns.RcodeNameError || len(ch.aliases) == 0:
			res.Records = ch.txt
			res.setFinding(c.exp.diagnose(ch.txt, len(full) > 1, strings.TrimSuffix(ch.final, ".")))
			if len(ch.txt) == 0 && in.Rcode == dns.RcodeNameError && len(full) > 1 {
				res.Detail = fmt.Sprintf("alias for %s, which does not exist", full[len(full)-1])
			}
		default:
			// The answer stops at an alias target without data for it: ask
			// for the target itself.
			cur = ch.final
			continue
		}
		return res, chainOrNil(full)
	}
}

func chainOrNil(full []string) []string {
	if len(full) < 2 {
		return nil
	}
	return full
}

// loop is the finding for a CNAME chain that comes back on itself or runs
// too long.
func (c *checker) loop(chain []string, loop bool) finding {
	f := finding{status: StatusCNAMELoop}
	if loop {
		f.detail = "the aliases (CNAME) lead in a circle: " + strings.Join(chain, " → ")
	} else {
		f.detail = fmt.Sprintf("more than %d aliases (CNAME) in a row: %s", c.maxCNAMEs, strings.Join(chain, " → "))
	}
	f.advice = []string{fmt.Sprintf("Point the CNAME at %s straight at the DKIM record your provider gave you, or replace it by a TXT record. %s", chain[0], c.exp.publishHint())}
	return f
}

// authoritative asks each name server of the zone holding name for its TXT
// records. Aliases into other zones are followed to those zones' servers;
// prior holds the names already asked and depth the aliases followed so far.
func (c *checker) authoritative(ctx context.Context, name string, depth int, prior []string, aliased bool) (string, []ServerResult) {
	name = dns.CanonicalName(name)
	zone, hosts, err := c.findZone(ctx, name)
	if err != nil {
		res := ServerResult{Name: strings.TrimSuffix(name, "."), Server: "(name servers)"}
		res.temporary(fmt.Errorf("could not find the authoritative name servers: %w", err))
		return strings.TrimSuffix(zone, "."), []ServerResult{res}
	}
	var (
		mu      sync.Mutex
		results []ServerResult
		wg      sync.WaitGroup
	)
	for _, host := range hosts {
		wg.Go(func() {
			ips, err := c.addrs(ctx, host)
			if err == nil && len(ips) == 0 {
				err = errors.New("the name server has no address (A or AAAA record)")
			}
			if err != nil {
				res := ServerResult{Name: strings.TrimSuffix(name, "."), Server: strings.TrimSuffix(host, ".")}
				res.temporary(err)
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				return
			}
			var inner sync.WaitGroup
			for _, ip := range ips {
				inner.Go(func() {
					res := c.askServer(ctx, name, zone, host, ip, aliased)
					mu.Lock()
					results = append(results, res)
					mu.Unlock()
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b ServerResult) int {
		return strings.Compare(a.Server+" "+a.Address, b.Server+" "+b.Address)
	})

	// Follow aliases that lead out of this zone, once per target.
	asked := append(slices.Clone(prior), name)
	var extra []ServerResult
	done := map[string][]ServerResult{}
	for i := range results {
		res := &results[i]
		if res.Target == "" {
			continue
		}
		hops := depth + len(res.CNAMEs)
		chain := append(trimDots(asked), res.CNAMEs...)
		switch {
		case slices.Contains(asked, res.Target):
			res.setFinding(c.loop(chain, true))
			continue
		case hops > c.maxCNAMEs:
			res.setFinding(c.loop(chain, false))
			continue
		}
		sub, ok := done[res.Target]
		if !ok {
			_, sub = c.authoritative(ctx, res.Target, hops, asked, true)
			done[res.Target] = sub
			extra = append(extra, sub...)
		}
		st, _ := c.aggregate(sub)
		res.Status, res.via = st, true
		res.Detail = fmt.Sprintf("alias for %s: %s there", strings.TrimSuffix(res.Target, "."), st)
	}
	return strings.TrimSuffix(zone, "."), append(results, extra...)
}

// askServer queries one address of an authoritative name server.
func (c *checker) askServer(ctx context.Context, name, zone, host string, ip netip.Addr, aliased bool) ServerResult {
	addr := netip.AddrPortFrom(ip, 53).String()
	if c.o.NameServerAddr != nil {
		addr = c.o.NameServerAddr(host, ip)
	}
	res := ServerResult{Name: strings.TrimSuffix(name, "."), Server: strings.TrimSuffix(host, "."), Address: addr}
	in, tcp, err := c.exchange(ctx, addr, name, dns.TypeTXT, false)
	res.TCP = tcp
	if err != nil {
		if unreachable(err) {
			res.Skipped = true
		}
		res.temporary(err)
		return res
	}
	res.Rcode = dns.RcodeToString[in.Rcode]
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		err := fmt.Errorf("%w: %s", errRcode, res.Rcode)
		if in.Rcode == dns.RcodeRefused {
			err = fmt.Errorf("%w: REFUSED (the server does not serve zone %s: a lame delegation?)", errRcode, strings.TrimSuffix(zone, "."))
		}
		res.temporary(err)
		return res
	}
	if !in.Authoritative {
		res.temporary(fmt.Errorf("%w: the answer is not authoritative (the server does not serve zone %s?)", errRcode, strings.TrimSuffix(zone, ".")))
		return res
	}
	ch := walk(in, name)
	for _, a := range ch.aliases {
		res.CNAMEs = append(res.CNAMEs, strings.TrimSuffix(a, "."))
	}
	res.Records = ch.txt
	switch {
	case ch.loop:
		res.setFinding(c.loop(append([]string{strings.TrimSuffix(name, ".")}, res.CNAMEs...), true))
	case len(ch.txt) == 0 && in.Rcode == dns.RcodeSuccess && len(ch.aliases) > 0 && !dns.IsSubDomain(zone, ch.final):
		// An alias out of this zone: its target is asked at its own
		// servers by the caller.
		res.Target = ch.final
	default:
		res.setFinding(c.exp.diagnose(ch.txt, aliased || len(ch.aliases) > 0, strings.TrimSuffix(ch.final, ".")))
		if aliased && res.Status == StatusCNAMEDangling && len(ch.txt) == 0 {
			res.Detail = "alias target: no TXT record"
			if in.Rcode == dns.RcodeNameError {
				res.Detail = "alias target: the name does not exist"
			}
		}
	}
	return res
}

// temporary records a DNS failure.
func (r *ServerResult) temporary(err error) {
	r.Status = StatusTemporary
	r.Error = err.Error()
	switch {
	case r.Skipped:
		r.Detail = "not reachable from this machine (no route); not counted"
	case isTimeout(err):
		r.Detail = "no answer (timeout)"
	default:
		r.Detail = err.Error()
	}
}

func (r *ServerResult) setFinding(f finding) {
	r.Status, r.Detail, r.advice = f.status, f.detail, f.advice
}

// ttl is the longest TTL of the records seen, 0 when none.
func (r *ServerResult) ttl() uint32 {
	var t uint32
	for _, rec := range r.Records {
		t = max(t, rec.TTL)
	}
	return t
}

func trimDots(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(n, ".")
	}
	return out
}
