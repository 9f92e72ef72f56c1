package dkim

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dnscheck/dnstest"
)

// TestNetResolver verifies through NetResolver and a real DNS server on
// loopback, one change to the published data per row: how TXT strings are
// joined and how DNS answers map to results (RFC 6376 §6.1.2).
func TestNetResolver(t *testing.T) {
	keys := loadFixedKeys(t)
	const name = "big._domainkey.example.com"
	value := record(t, keys.rsa4096.Public())
	s := &Signature{
		Version: "1", Algorithm: "rsa-sha256", HeaderCanon: Relaxed, BodyCanon: Relaxed,
		Domain: "example.com", Selector: "big", Headers: []string{"from", "subject"}, BodyLength: -1,
	}
	signed := handSign(t, keys.rsa4096, s, mutMessage)
	valid := dnstest.TXT(name, SplitTXT(value)...)
	for _, tc := range []struct {
		name   string
		zone   dnstest.Zone
		status Status
		err    error
	}{
		{"RFC 6376 §3.6.2.2: key in several strings, joined", dnstest.Zone{Records: []dns.RR{valid}}, StatusPass, nil},
		{"RFC 6376 §3.6.2.2: several TXT records, first not DKIM",
			dnstest.Zone{Records: []dns.RR{dnstest.TXT(name, "v=spf1 -all"), valid}}, StatusPass, nil},
		{"RFC 6376 §3.6.2.2: strings split inside p=, with a space added",
			dnstest.Zone{Records: []dns.RR{dnstest.TXT(name, append([]string{value[:100] + " "}, SplitTXT(value[100:])...)...)}}, StatusPass, nil},
		{"RFC 6376 §3.6.2.2: key record cut at 255 bytes",
			dnstest.Zone{Records: []dns.RR{dnstest.TXT(name, value[:255])}}, StatusPermError, ErrKeyDecode},
		{"RFC 6376 §6.1.2: NXDOMAIN", dnstest.Zone{}, StatusPermError, ErrKeyNotFound},
		{"RFC 6376 §6.1.2: name without TXT record",
			dnstest.Zone{Records: []dns.RR{dnstest.A(name, "192.0.2.1")}}, StatusPermError, ErrKeyNotFound},
		{"RFC 6376 §6.1.2: SERVFAIL", dnstest.Zone{Records: []dns.RR{valid}, Faults: map[string]dnstest.Fault{name: dnstest.ServFail}}, StatusTempError, ErrTempDNS},
		{"RFC 6376 §6.1.2: REFUSED", dnstest.Zone{Records: []dns.RR{valid}, Faults: map[string]dnstest.Fault{name: dnstest.Refused}}, StatusTempError, ErrTempDNS},
		{"RFC 6376 §6.1.2: no answer", dnstest.Zone{Records: []dns.RR{valid}, Faults: map[string]dnstest.Fault{name: dnstest.Timeout}}, StatusTempError, ErrTempDNS},
		{"RFC 1035 §4.2.1: truncated UDP answer, retried over TCP", dnstest.Zone{Records: []dns.RR{valid}, Faults: map[string]dnstest.Fault{name: dnstest.Truncate}}, StatusPass, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.NewServer(t, tc.zone)
			var d net.Dialer
			r := NetResolver{Resolver: &net.Resolver{
				PreferGo: true,
				Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return d.DialContext(ctx, network, srv.Addr())
				},
			}}
			// Short for the server that never answers, roomy for the rest.
			wait := 5 * time.Second
			if tc.zone.Faults[name] == dnstest.Timeout {
				wait = 200 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			res, err := Verify(ctx, strings.NewReader(signed), &VerifyOptions{Resolver: r})
			if err != nil || len(res) != 1 {
				t.Fatalf("Verify: %d results, %v", len(res), err)
			}
			if res[0].Status != tc.status {
				t.Errorf("status %s (%v), want %s", res[0].Status, res[0].Err, tc.status)
			}
			if tc.err == nil && res[0].Err != nil || tc.err != nil && !errors.Is(res[0].Err, tc.err) {
				t.Errorf("error %v, want %v", res[0].Err, tc.err)
			}
		})
	}
}
