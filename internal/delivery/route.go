package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/miekg/dns"
)

// ErrNoSuchDomain means DNS answered NXDOMAIN: the name does not exist, and
// mail to it bounces.
var ErrNoSuchDomain = errors.New("queue: no such domain")

// ErrDNS means a DNS lookup failed in a way that may pass (SERVFAIL, a
// timeout, a refused query); mail waits and is retried.
var ErrDNS = errors.New("queue: DNS lookup failed")

// Resolver finds where mail for a domain goes.
type Resolver interface {
	// LookupMX returns the MX records of domain sorted by preference. No
	// records (NODATA) is (nil, nil); a name that does not exist is an
	// error wrapping ErrNoSuchDomain.
	LookupMX(ctx context.Context, domain string) ([]*net.MX, error)
	// LookupHost returns the IPv4 and IPv6 addresses of host, or an error
	// wrapping ErrNoSuchDomain when there are none.
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DNSResolver is a Resolver that asks one DNS server directly (miekg/dns),
// so tests can point it at a server on loopback and production at a local
// validating resolver.
type DNSResolver struct {
	// Server is the HOST:PORT of the DNS server; "" means the first
	// nameserver in /etc/resolv.conf.
	Server string
	// Timeout bounds each query; 0 means 5s.
	Timeout time.Duration
}

var _ Resolver = (*DNSResolver)(nil)

func (r *DNSResolver) server() (string, error) {
	if r.Server != "" {
		return r.Server, nil
	}
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cfg.Servers) == 0 {
		return "", fmt.Errorf("%w: no name server configured: %v", ErrDNS, err)
	}
	return net.JoinHostPort(cfg.Servers[0], cfg.Port), nil
}

// query sends one question, over TCP again if the UDP answer was cut.
func (r *DNSResolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	srv, err := r.server()
	if err != nil {
		return nil, err
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	q.SetEdns0(1232, false)
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	c := &dns.Client{Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, q, srv)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, q, srv)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrDNS, dns.TypeToString[qtype], name, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
		return in, nil
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%w: %s", ErrNoSuchDomain, name)
	default:
		return nil, fmt.Errorf("%w: %s %s: %s", ErrDNS, dns.TypeToString[qtype], name, dns.RcodeToString[in.Rcode])
	}
}

// LookupMX implements Resolver.
func (r *DNSResolver) LookupMX(ctx context.Context, domain string) ([]*net.MX, error) {
	in, err := r.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, rr := range in.Answer {
		if mx, ok := rr.(*dns.MX); ok {
			out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	// RFC 5321 §5.1: lower preference first. Equal preferences keep the
	// server's order, which a resolver usually rotates.
	slices.SortStableFunc(out, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return out, nil
}

// LookupHost implements Resolver.
func (r *DNSResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	var out []string
	var firstErr error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		in, err := r.query(ctx, host, t)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range in.Answer {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, a.A.String())
			case *dns.AAAA:
				out = append(out, a.AAAA.String())
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("%w: %s has no address", ErrNoSuchDomain, host)
}

func trimDot(s string) string { return strings.TrimSuffix(s, ".") }

// domainOf is what a recipient is routed by: its canonical domain, or its
// address literal as written (mailaddr.Address.DomainPart). The queue
// holds only recipients mailaddr.ParseAddress accepts; "" for any other,
// which no MX lookup finds.
func domainOf(addr string) string {
	a, err := mailaddr.ParseAddress(addr, mailaddr.AddressOptions{IPLiterals: true})
	if err != nil {
		return ""
	}
	return a.DomainPart()
}
