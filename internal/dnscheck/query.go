package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size offered (the DNS flag day 2020 value):
// it carries a 4096-bit RSA record without truncation, and avoids
// fragmentation.
const ednsSize = 1232

// errRcode marks an answer with a response code that says nothing about the
// name (SERVFAIL, REFUSED, ...).
var errRcode = errors.New("dns error")

// exchange sends one query to addr over UDP, once more on timeout, and over
// TCP when the answer is truncated (RFC 7766 §5).
func (c *checker) exchange(ctx context.Context, addr, name string, qtype uint16, recursive bool) (*dns.Msg, bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = recursive
	m.SetEdns0(ednsSize, false)
	try := func(network string) (*dns.Msg, error) {
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		cl := &dns.Client{Net: network, UDPSize: ednsSize, Timeout: c.timeout}
		in, _, err := cl.ExchangeContext(actx, m, addr)
		return in, err
	}
	var in *dns.Msg
	var err error
	for range 2 {
		in, err = try("udp")
		if err == nil || !isTimeout(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, false, err
	}
	if in.Truncated {
		in, err = try("tcp")
		return in, true, err
	}
	return in, false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// unreachable tells an error that means this machine cannot reach the
// address at all (no IPv6 route, say) from one the server is to blame for.
func unreachable(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// resolve asks the recursive resolvers in turn, moving on when one fails
// or answers SERVFAIL or REFUSED. It returns the answer, whether it came
// over TCP, and the resolver that gave it.
func (c *checker) resolve(ctx context.Context, name string, qtype uint16) (*dns.Msg, bool, string, error) {
	var err error
	for _, addr := range c.resolvers {
		var in *dns.Msg
		var tcp bool
		in, tcp, err = c.exchange(ctx, addr, name, qtype, true)
		if err == nil {
			if in.Rcode == dns.RcodeSuccess || in.Rcode == dns.RcodeNameError {
				return in, tcp, addr, nil
			}
			err = fmt.Errorf("%w: %s", errRcode, dns.RcodeToString[in.Rcode])
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, false, c.resolvers[0], err
}

// chain is what an answer says about a name: the aliases followed from it
// and the TXT records at the end.
type chain struct {
	aliases []string // CNAME targets in order
	final   string   // the last name reached
	txt     []TXTRecord
	loop    bool
}

// walk follows the CNAMEs of an answer from name, as far as the answer
// goes, and takes the TXT records of the name it ends at.
func walk(m *dns.Msg, name string) chain {
	ch := chain{final: dns.CanonicalName(name)}
	seen := map[string]bool{ch.final: true}
	for {
		var target string
		for _, rr := range m.Answer {
			if !strings.EqualFold(rr.Header().Name, ch.final) {
				continue
			}
			switch rr := rr.(type) {
			case *dns.TXT:
				ch.txt = append(ch.txt, txtRecord(rr))
			case *dns.CNAME:
				target = dns.CanonicalName(rr.Target)
			}
		}
		if len(ch.txt) > 0 || target == "" {
			return ch
		}
		ch.aliases = append(ch.aliases, target)
		if seen[target] {
			ch.loop = true
			return ch
		}
		seen[target] = true
		ch.final = target
	}
}

func txtRecord(rr *dns.TXT) TXTRecord {
	strs := make([]string, len(rr.Txt))
	for i, s := range rr.Txt {
		strs[i] = unescape(s)
	}
	return TXTRecord{Value: strings.Join(strs, ""), Strings: strs, TTL: rr.Hdr.Ttl}
}

// unescape turns a character-string as miekg/dns presents it (\" \\ and
// \DDD escapes, RFC 1035 §5.1) back into the bytes that were on the wire.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b = append(b, s[i])
			continue
		}
		i++
		if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			b = append(b, byte(int(s[i]-'0')*100+int(s[i+1]-'0')*10+int(s[i+2]-'0')))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// findZone finds the zone that holds name and its name servers, through the
// recursive resolver: it asks for the SOA of name and of each parent in
// turn, and takes the zone from an SOA in the answer or, in a negative
// answer, the authority section (RFC 2308 §3). A CNAME answer is skipped: its
// SOA describes the target's zone. Resolvers that strip the authority
// section cost one query per label instead.
func (c *checker) findZone(ctx context.Context, name string) (string, []string, error) {
	cur := dns.CanonicalName(name)
	zone := ""
	for zone == "" {
		in, _, _, err := c.resolve(ctx, cur, dns.TypeSOA)
		switch {
		case errors.Is(err, errRcode) && cur != ".":
			// A resolver may fail for the name (its CNAME target is
			// broken, say) and still answer for its parents.
			in = new(dns.Msg)
		case err != nil:
			return "", nil, fmt.Errorf("SOA %s: %w", cur, err)
		}
		aliased := false
		for _, rr := range in.Answer {
			switch rr := rr.(type) {
			case *dns.SOA:
				if strings.EqualFold(rr.Hdr.Name, cur) {
					zone = cur
				}
			case *dns.CNAME:
				if strings.EqualFold(rr.Hdr.Name, cur) {
					aliased = true
				}
			}
		}
		if zone == "" && !aliased {
			for _, rr := range in.Ns {
				if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(dns.CanonicalName(soa.Hdr.Name), cur) {
					zone = dns.CanonicalName(soa.Hdr.Name)
				}
			}
		}
		if zone == "" {
			if cur == "." {
				return "", nil, errors.New("no zone found")
			}
			_, parent, _ := strings.Cut(cur, ".")
			if parent == "" {
				parent = "."
			}
			cur = parent
		}
	}
	in, _, _, err := c.resolve(ctx, zone, dns.TypeNS)
	if err != nil {
		return zone, nil, fmt.Errorf("NS %s: %w", zone, err)
	}
	var hosts []string
	for _, rr := range in.Answer {
		if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(ns.Hdr.Name, zone) {
			hosts = append(hosts, dns.CanonicalName(ns.Ns))
		}
	}
	if len(hosts) == 0 {
		return zone, nil, fmt.Errorf("zone %s has no NS records", zone)
	}
	return zone, hosts, nil
}

// addrs finds the IPv4 and IPv6 addresses of a name server.
func (c *checker) addrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		in, _, _, err := c.resolve(ctx, host, qtype)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", dns.TypeToString[qtype], host, err))
			continue
		}
		for _, rr := range in.Answer {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.A:
				ip = rr.A
			case *dns.AAAA:
				ip = rr.AAAA
			default:
				continue
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
