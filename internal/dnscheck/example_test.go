package dnscheck_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/keys"
)

// Check a published key against the private key it belongs to, through the
// system's resolver and every authoritative name server (not run: it needs
// real DNS).
func ExampleCheck() {
	k, err := keys.ReadFile("/etc/dkimd/example.com.sel.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := dnscheck.Check(ctx, dnscheck.Options{
		Domain:    "example.com",
		Selector:  "sel",
		PublicKey: k.Public(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := r.WriteText(os.Stdout); err != nil {
		fmt.Println(err)
	}
	os.Exit(r.ExitCode())
}

func ExampleReport_WriteText() {
	r := &dnscheck.Report{
		Domain:   "example.com",
		Selector: "sel",
		Name:     "sel._domainkey.example.com",
		Status:   dnscheck.StatusPropagating,
		Summary:  "sel._domainkey.example.com: right on 2 of 3 servers; the others are not updated yet",
		Zone:     "example.com",
		Resolver: dnscheck.ServerResult{
			Name: "sel._domainkey.example.com", Server: "resolver", Address: "192.0.2.53:53",
			Status: dnscheck.StatusMatch, Detail: "Ed25519 key sha256:4a5c2e3f0d1b",
			Records: []dnscheck.TXTRecord{{Value: "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", Strings: []string{"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}, TTL: 300}},
		},
		Servers: []dnscheck.ServerResult{
			{
				Name: "sel._domainkey.example.com", Server: "ns1.example.com", Address: "192.0.2.1:53",
				Status: dnscheck.StatusMatch, Detail: "Ed25519 key sha256:4a5c2e3f0d1b",
				Records: []dnscheck.TXTRecord{{Value: "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", Strings: []string{"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}, TTL: 300}},
			},
			{
				Name: "sel._domainkey.example.com", Server: "ns2.example.com", Address: "198.51.100.2:53",
				Status: dnscheck.StatusNotFound, Detail: "no TXT record", Rcode: "NXDOMAIN",
			},
		},
		Advice: []string{
			"Right on: resolver, ns1.example.com 192.0.2.1:53. Not yet on: ns2.example.com 198.51.100.2:53 (no record).",
			"DNS changes reach every name server within minutes, or hours for some providers: check again later.",
		},
		CheckedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	if err := r.WriteText(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Record:   sel._domainkey.example.com
	// Status:   propagating (not OK)
	// Summary:  sel._domainkey.example.com: right on 2 of 3 servers; the others are not updated yet
	// Zone:     example.com
	//
	// SERVER           ADDRESS          STATUS     DETAIL
	// resolver         192.0.2.53:53    match      Ed25519 key sha256:4a5c2e3f0d1b
	// ns1.example.com  192.0.2.1:53     match      Ed25519 key sha256:4a5c2e3f0d1b
	// ns2.example.com  198.51.100.2:53  not_found  no TXT record
	//
	// Values seen:
	//   resolver, ns1.example.com:
	//     "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	//
	// What to do:
	//   - Right on: resolver, ns1.example.com 192.0.2.1:53. Not yet on: ns2.example.com 198.51.100.2:53 (no record).
	//   - DNS changes reach every name server within minutes, or hours for some providers: check again later.
	//
	// Checked at 2026-03-01T12:00:00Z.
}
