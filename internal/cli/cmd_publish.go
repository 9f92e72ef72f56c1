package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/delegation"
	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// parseDays reads a period as a Go duration ("36h", "15m") or in days
// ("90d").
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q: want a number of days like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q: want a period like 90d or 36h", s)
	}
	return v, nil
}

// publishFlags are domain set's publishing flags.
type publishFlags struct {
	mode, zone, every, server, tsigName, tsigFile *string
}

func addPublishFlags(fs interface {
	String(string, string, string) *string
}) publishFlags {
	return publishFlags{
		mode:     fs.String("publish", "", "how key records reach DNS: manual, delegated (two CNAMEs into dkimd's zone) or update (RFC 2136 DNS UPDATE)"),
		zone:     fs.String("dns-zone", "", "dkimd's delegated zone, as serve --dns-zone (to make a domain delegated)"),
		every:    fs.String("rotate-every", "", "rotate the key on this schedule, e.g. 90d (delegated and update; default 90d)"),
		server:   fs.String("update-server", "", "the domain's authoritative server for DNS UPDATE, HOST:PORT"),
		tsigName: fs.String("tsig-name", "", "the TSIG key's name (HMAC-SHA256)"),
		tsigFile: fs.String("tsig-secret-file", "", "file holding the TSIG secret (base64) or a BIND key file; sealed under the master key"),
	}
}

func (p publishFlags) set() bool {
	return *p.mode != "" || *p.zone != "" || *p.every != "" || *p.server != "" || *p.tsigName != "" || *p.tsigFile != ""
}

func (p publishFlags) request() (admin.PublishRequest, error) {
	r := admin.PublishRequest{Mode: store.PublishMode(*p.mode), Zone: *p.zone, UpdateServer: *p.server, TSIGName: *p.tsigName}
	if *p.every != "" {
		v, err := parseDays(*p.every)
		if err != nil {
			return r, usagef("--rotate-every %v", err)
		}
		r.RotateEvery = v
	}
	if *p.tsigFile != "" {
		b, err := os.ReadFile(*p.tsigFile)
		if err != nil {
			return r, err
		}
		r.TSIGSecret = b
	}
	return r, nil
}

// printPublishing says what a domain's publishing mode asks of people.
func printPublishing(e *Env, dom store.Domain) error {
	switch dom.Publish {
	case store.PublishDelegated:
		recs, err := delegation.Records(dom)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "%s: delegated; keys rotate every %s with no DNS change.\n\n", dom.Name, period(dom.RotationPeriod()))
		return printCNAMEs(e, dom, recs)
	case store.PublishUpdate:
		_, err := fmt.Fprintf(e.Stdout, "%s: published by DNS UPDATE to %s with TSIG key %s; keys rotate every %s.\n",
			dom.Name, dom.UpdateServer, dom.TSIGName, period(dom.RotationPeriod()))
		return err
	}
	_, err := fmt.Fprintf(e.Stdout, "%s: records published by hand (manual)\n", dom.Name)
	return err
}

func period(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// printCNAMEs shows the two CNAME records of a delegated domain.
func printCNAMEs(e *Env, dom store.Domain, recs []delegation.CNAME) error {
	fmt.Fprintf(e.Stdout, "Create these two CNAME records in the DNS zone of %s, once:\n\n", dom.Name)
	for _, r := range recs {
		fmt.Fprintf(e.Stdout, "  Host:   %s\n          (full name %s)\n  Type:   CNAME\n  Target: %s\n\n", r.Host, r.Name, r.Target)
	}
	fmt.Fprintf(e.Stdout, "Zone-file form:\n\n")
	for _, r := range recs {
		fmt.Fprintln(e.Stdout, r.Zone)
	}
	return nil
}

// delegatedRecord is key record for a delegated domain without --selector:
// the two CNAMEs, in the forms asked for.
func delegatedRecord(ctx context.Context, e *Env, d *data, domain, format string) error {
	dom, recs, err := d.admin.DelegationRecords(ctx, admin.CLI(), domain)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		return writeJSON(e.Stdout, recs)
	case "zone":
		for _, r := range recs {
			fmt.Fprintln(e.Stdout, r.Zone)
		}
		return nil
	case "value":
		for _, r := range recs {
			fmt.Fprintln(e.Stdout, r.Target)
		}
		return nil
	}
	return printCNAMEs(e, dom, recs)
}

// delegationCheck is dns check for a delegated domain without --selector:
// both CNAMEs at every server of the customer's zone, and the chains.
func delegationCheck(ctx context.Context, e *Env, df dataFlags, domain, resolver string) error {
	d, err := openData(ctx, e, df, nil)
	if err != nil {
		return err
	}
	defer d.Close()
	checks, err := d.admin.CheckDelegation(ctx, admin.CLI(), domain, dnscheck.Options{Resolver: resolver})
	if err != nil {
		return err
	}
	if *df.asJSON {
		if err := writeJSON(e.Stdout, checks); err != nil {
			return err
		}
	} else {
		for _, c := range checks {
			verdict := "OK"
			if !c.OK {
				verdict = "NOT OK"
			}
			fmt.Fprintf(e.Stdout, "%s CNAME %s: %s\n", c.Name, c.Target, verdict)
			for _, p := range c.Problems {
				fmt.Fprintf(e.Stdout, "  - %s\n", p)
			}
		}
	}
	for _, c := range checks {
		if !c.OK {
			return resultError{"the delegation CNAMEs are not in place"}
		}
	}
	return nil
}
