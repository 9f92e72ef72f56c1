package dnsupdate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
)

// Failure classes, for errors.Is.
var (
	// ErrRefused: the server refused the update; usually its policy does
	// not let this TSIG key change this name.
	ErrRefused = errors.New("dnsupdate: update refused")
	// ErrNotAuth: the server did not accept the TSIG signature: an
	// unknown key name, a wrong secret, or clocks more than five minutes
	// apart; or it is not authoritative for the zone.
	ErrNotAuth = errors.New("dnsupdate: not authorized")
	// ErrNotZone: the name is not in the zone the server was asked to
	// update.
	ErrNotZone = errors.New("dnsupdate: name not in zone")
	// ErrTimeout: the server did not answer.
	ErrTimeout = errors.New("dnsupdate: no answer")
	// ErrServer: any other failure of the server (SERVFAIL, NOTIMP, a bad
	// answer).
	ErrServer = errors.New("dnsupdate: server failure")
	// ErrOptions: the Options are unusable.
	ErrOptions = errors.New("dnsupdate: invalid options")
)

// DefaultTimeout bounds one exchange when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Options say where updates go and how they are signed.
type Options struct {
	// Server is the primary authoritative server, HOST:PORT. Required.
	Server string
	// Zone is the zone updated; empty means the zone found by asking
	// Server for the SOA of the name and its parents.
	Zone string
	// TSIGName and TSIGSecret (base64, as in a BIND key file) sign every
	// update with HMAC-SHA256. Required.
	TSIGName   string
	TSIGSecret string
	// Timeout bounds each exchange; zero means DefaultTimeout.
	Timeout time.Duration
}

// Client sends updates. It is safe for concurrent use.
type Client struct {
	o Options
}

// New checks o and returns a Client.
func New(o Options) (*Client, error) {
	if _, _, err := net.SplitHostPort(o.Server); err != nil {
		return nil, fmt.Errorf("%w: server %q: want HOST:PORT", ErrOptions, o.Server)
	}
	if o.TSIGName == "" || o.TSIGSecret == "" {
		return nil, fmt.Errorf("%w: a TSIG key name and secret are required", ErrOptions)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	o.TSIGName = dns.CanonicalName(o.TSIGName)
	return &Client{o: o}, nil
}

// Error is a failed update, with what the server said.
type Error struct {
	// Op is "add", "remove" or "find zone"; Name the record name.
	Op, Name, Server string
	// Rcode is the DNS response code, -1 for none.
	Rcode int
	// TSIGError is the TSIG error the server reported (BADKEY, BADSIG,
	// BADTIME), 0 for none.
	TSIGError uint16
	// Class is one of the Err sentinels.
	Class error
	// Detail says in words what happened and what to do.
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("DNS UPDATE %s %s at %s: %s", e.Op, e.Name, e.Server, e.Detail)
}

// Unwrap gives the failure class.
func (e *Error) Unwrap() error { return e.Class }

// SetTXT makes value the only TXT record at name: the old TXT records go
// and the new one comes in one update (RFC 2136 §2.5), so a resolver never
// sees none or two. The value is split into strings of at most 255 bytes.
func (c *Client) SetTXT(ctx context.Context, name, value string, ttl uint32) error {
	name = dns.CanonicalName(name)
	zone, err := c.zone(ctx, name)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: escaped(dkim.SplitTXT(value))}
	m.RemoveRRset([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT}}})
	m.Insert([]dns.RR{rr})
	return c.send(ctx, "add", name, zone, m)
}

// Remove deletes every TXT record at name. Removing a name that has none
// succeeds.
func (c *Client) Remove(ctx context.Context, name string) error {
	name = dns.CanonicalName(name)
	zone, err := c.zone(ctx, name)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	m.RemoveRRset([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT}}})
	return c.send(ctx, "remove", name, zone, m)
}

func escaped(parts []string) []string {
	for i, p := range parts {
		if strings.ContainsAny(p, `"\`) {
			p = strings.ReplaceAll(p, `\`, `\\`)
			parts[i] = strings.ReplaceAll(p, `"`, `\"`)
		}
	}
	return parts
}

// zone gives Options.Zone, or finds the zone of name by asking the server
// for the SOA of name and each parent.
func (c *Client) zone(ctx context.Context, name string) (string, error) {
	if c.o.Zone != "" {
		z := dns.CanonicalName(c.o.Zone)
		if !dns.IsSubDomain(z, name) {
			return "", &Error{Op: "add", Name: strings.TrimSuffix(name, "."), Server: c.o.Server, Rcode: -1, Class: ErrNotZone,
				Detail: fmt.Sprintf("the name is not in zone %s", strings.TrimSuffix(z, "."))}
		}
		return z, nil
	}
	for cur := name; cur != "."; {
		m := new(dns.Msg)
		m.SetQuestion(cur, dns.TypeSOA)
		m.RecursionDesired = false
		in, err := c.exchange(ctx, m, false)
		if err != nil {
			return "", c.fail("find zone", name, nil, err)
		}
		for _, rr := range append(in.Answer, in.Ns...) {
			if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(dns.CanonicalName(soa.Hdr.Name), name) {
				return dns.CanonicalName(soa.Hdr.Name), nil
			}
		}
		if in.Rcode == dns.RcodeRefused {
			// The server serves no zone above the name.
			break
		}
		_, parent, _ := strings.Cut(cur, ".")
		if parent == "" {
			parent = "."
		}
		cur = parent
	}
	return "", &Error{Op: "find zone", Name: strings.TrimSuffix(name, "."), Server: c.o.Server, Rcode: -1, Class: ErrNotZone,
		Detail: "the server serves no zone holding this name (no SOA found): is it the domain's primary name server?"}
}

func (c *Client) send(ctx context.Context, op, name, zone string, m *dns.Msg) error {
	m.SetTsig(c.o.TSIGName, dns.HmacSHA256, 300, time.Now().Unix())
	in, err := c.exchange(ctx, m, true)
	if err != nil || in.Rcode != dns.RcodeSuccess {
		return c.fail(op, name, in, err)
	}
	return nil
}

// exchange sends m over UDP, or TCP when the answer is truncated or signed
// updates are large.
func (c *Client) exchange(ctx context.Context, m *dns.Msg, signed bool) (*dns.Msg, error) {
	cl := &dns.Client{Net: "tcp", Timeout: c.o.Timeout}
	if signed {
		cl.TsigSecret = map[string]string{c.o.TSIGName: c.o.TSIGSecret}
	}
	cctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	in, _, err := cl.ExchangeContext(cctx, m, c.o.Server)
	if in != nil && err != nil && signed {
		// An answer whose TSIG does not verify: the server did not know
		// our key, so it could not sign; its RCODE says why.
		return in, nil
	}
	return in, err
}

// fail turns an answer or an exchange error into an *Error in words.
func (c *Client) fail(op, name string, in *dns.Msg, err error) error {
	e := &Error{Op: op, Name: strings.TrimSuffix(name, "."), Server: c.o.Server, Rcode: -1}
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			e.Class, e.Detail = ErrTimeout, fmt.Sprintf("no answer within %s: is %s the domain's primary server, reachable from here on TCP?", c.o.Timeout, c.o.Server)
			return e
		}
		e.Class, e.Detail = ErrServer, "could not reach the server: "+err.Error()
		if errors.Is(err, dns.ErrSecret) || errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrAuth) {
			e.Class, e.Detail = ErrNotAuth, "the server's answer does not carry a valid signature with our TSIG key: "+err.Error()
		}
		return e
	}
	e.Rcode = in.Rcode
	if t := in.IsTsig(); t != nil {
		e.TSIGError = t.Error
	}
	rc := dns.RcodeToString[in.Rcode]
	switch in.Rcode {
	case dns.RcodeRefused:
		e.Class = ErrRefused
		e.Detail = fmt.Sprintf("REFUSED: the server does not let TSIG key %s update %s; allow it in the zone's update-policy (BIND: grant %s subdomain _domainkey.<domain> TXT;)",
			strings.TrimSuffix(c.o.TSIGName, "."), e.Name, strings.TrimSuffix(c.o.TSIGName, "."))
	case dns.RcodeNotAuth:
		e.Class = ErrNotAuth
		switch e.TSIGError {
		case dns.RcodeBadKey:
			e.Detail = fmt.Sprintf("NOTAUTH (BADKEY): the server does not know TSIG key %s: check the key name", strings.TrimSuffix(c.o.TSIGName, "."))
		case dns.RcodeBadSig:
			e.Detail = fmt.Sprintf("NOTAUTH (BADSIG): the signature with TSIG key %s does not verify: the secret differs from the server's", strings.TrimSuffix(c.o.TSIGName, "."))
		case dns.RcodeBadTime:
			e.Detail = "NOTAUTH (BADTIME): this machine's clock and the server's are more than five minutes apart: fix the time (NTP)"
		default:
			e.Detail = "NOTAUTH: the server rejected the TSIG key (a wrong key name or secret, or clocks apart), or is not authoritative for the zone"
		}
	case dns.RcodeNotZone:
		e.Class, e.Detail = ErrNotZone, "NOTZONE: the name is not in the zone updated"
	default:
		e.Class, e.Detail = ErrServer, rc+": the server could not make the change"
	}
	return e
}
