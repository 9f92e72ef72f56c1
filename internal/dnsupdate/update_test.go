package dnsupdate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/peertest"
)

const cust = "customer.example"

func secret(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// txtAt asks server for the TXT records at name, joined.
func txtAt(t testing.TB, server, name string) ([]string, int) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.SetEdns0(4096, false)
	cl := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	in, _, err := cl.Exchange(m, server)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, in.Rcode
}

// TestUpdateBind adds, replaces and removes a key record at a real BIND
// with a TSIG key and an update-policy, and checks the worded errors for
// a refused name, a wrong secret, an unknown key and a server that does
// not answer.
func TestUpdateBind(t *testing.T) {
	good, other := secret(t), secret(t)
	server := peertest.Bind(t, peertest.BindOptions{
		Keys:  map[string]string{"dkimd": good, "other": other},
		Zones: []peertest.BindZone{{Name: cust, UpdatePolicy: "grant dkimd subdomain _domainkey." + cust + ". TXT;"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := New(Options{Server: server, TSIGName: "dkimd", TSIGSecret: good})
	if err != nil {
		t.Fatal(err)
	}
	name := "s1._domainkey." + cust
	// A 4096-bit-sized value: several 255-byte strings.
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 700)
	if err := c.SetTXT(ctx, name, long, 60); err != nil {
		t.Fatalf("add: %v", err)
	}
	if got, _ := txtAt(t, server, name); len(got) != 1 || got[0] != long {
		t.Fatalf("after add: %q", got)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	next, _ := dkim.RecordValue(pub)
	if err := c.SetTXT(ctx, name, next, 60); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if got, _ := txtAt(t, server, name); len(got) != 1 || got[0] != next {
		t.Fatalf("after replace: one record with the new value wanted, got %q", got)
	}
	if err := c.Remove(ctx, name); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if got, rc := txtAt(t, server, name); len(got) != 0 || rc != dns.RcodeNameError {
		t.Fatalf("after remove: %q %s", got, dns.RcodeToString[rc])
	}
	if err := c.Remove(ctx, name); err != nil {
		t.Fatalf("removing again: %v", err)
	}

	for _, tc := range []struct {
		rule   string
		opts   Options
		name   string
		class  error
		detail string
	}{
		{"update-policy: a name outside _domainkey is REFUSED", Options{Server: server, TSIGName: "dkimd", TSIGSecret: good},
			"www." + cust, ErrRefused, "does not let TSIG key dkimd update www." + cust},
		{"update-policy: another key may not update", Options{Server: server, TSIGName: "other", TSIGSecret: other},
			name, ErrRefused, "does not let TSIG key other update"},
		{"RFC 8945 §5.2.2: a wrong secret is NOTAUTH (BADSIG)", Options{Server: server, TSIGName: "dkimd", TSIGSecret: other},
			name, ErrNotAuth, "secret differs"},
		{"RFC 8945 §5.2.1: an unknown key is NOTAUTH (BADKEY)", Options{Server: server, TSIGName: "nobody", TSIGSecret: good},
			name, ErrNotAuth, "does not know TSIG key nobody"},
		{"a name in no zone of the server", Options{Server: server, TSIGName: "dkimd", TSIGSecret: good},
			"s1._domainkey.elsewhere.example", ErrNotZone, ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			c, err := New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			err = c.SetTXT(ctx, tc.name, next, 60)
			if !errors.Is(err, tc.class) {
				t.Fatalf("got %v, want %v", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q lacks %q", err, tc.detail)
			}
			if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), other) {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
	t.Run("a server that does not answer", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c, _ := New(Options{Server: l.Addr().String(), TSIGName: "dkimd", TSIGSecret: good, Zone: cust, Timeout: 300 * time.Millisecond})
		err = c.SetTXT(ctx, name, next, 60)
		if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "no answer within") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestNewRefuses(t *testing.T) {
	for name, o := range map[string]Options{
		"no port":   {Server: "127.0.0.1", TSIGName: "k", TSIGSecret: "c2VjcmV0"},
		"no key":    {Server: "127.0.0.1:53", TSIGSecret: "c2VjcmV0"},
		"no secret": {Server: "127.0.0.1:53", TSIGName: "k"},
	} {
		if _, err := New(o); !errors.Is(err, ErrOptions) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
