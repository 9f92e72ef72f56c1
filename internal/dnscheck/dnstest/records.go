package dnstest

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// TTL is the time to live of the records the helpers below make.
const TTL = 300

func hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.CanonicalName(name), Rrtype: rrtype, Class: dns.ClassINET, Ttl: TTL}
}

// TXT makes a TXT record with one character-string per argument. The
// strings are taken as raw bytes: quotes, backslashes and any other byte
// reach the client as given. A string longer than 255 bytes cannot be sent
// and makes the server answer SERVFAIL.
func TXT(name string, strs ...string) *dns.TXT {
	txt := make([]string, len(strs))
	for i, s := range strs {
		txt[i] = escape(s)
	}
	return &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: txt}
}

// escape turns raw bytes into the presentation form miekg/dns packs
// (RFC 1035 §5.1): \" \\ and \DDD for bytes outside printable ASCII.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// CNAME makes an alias from name to target.
func CNAME(name, target string) *dns.CNAME {
	return &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: dns.CanonicalName(target)}
}

// NS names host as a name server of zone.
func NS(zone, host string) *dns.NS {
	return &dns.NS{Hdr: hdr(zone, dns.TypeNS), Ns: dns.CanonicalName(host)}
}

// A gives name an IPv4 address. It panics on a malformed address, which is
// a mistake in the test.
func A(name, ip string) *dns.A {
	return &dns.A{Hdr: hdr(name, dns.TypeA), A: netip.MustParseAddr(ip).AsSlice()}
}

// AAAA gives name an IPv6 address. It panics on a malformed address.
func AAAA(name, ip string) *dns.AAAA {
	return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: netip.MustParseAddr(ip).AsSlice()}
}

// SOA makes the start-of-authority record of zone. A Server treats the
// names at and below each SOA it holds as its own: it answers NXDOMAIN for
// those it has no records for.
func SOA(zone string) *dns.SOA {
	zone = dns.CanonicalName(zone)
	return &dns.SOA{
		Hdr: hdr(zone, dns.TypeSOA), Ns: "ns1." + zone, Mbox: "hostmaster." + zone,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: TTL,
	}
}

// MX names host as a mail exchanger of name with preference pref; host "."
// makes the RFC 7505 null MX.
func MX(name string, pref uint16, host string) *dns.MX {
	return &dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: pref, Mx: dns.CanonicalName(host)}
}
