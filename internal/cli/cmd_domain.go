package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

func runDomain(ctx context.Context, e *Env, args []string) error {
	return subcommand(ctx, e, "domain", args, map[string]func(context.Context, *Env, []string) error{
		"add": domainAdd, "remove": domainRemove, "list": domainList, "set": domainSet,
	})
}

// oversignUsage says what --oversign takes.
const oversignUsage = "header fields to list in h= once more than they occur, so that one added after signing breaks the signature: " +
	"default (every signed field RFC 5322 allows once, and the MIME fields), from-only, none, or field names separated by commas"

func domainAdd(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("domain add", e)
	df := addDataFlags(fs, e)
	auto := fs.Bool("auto-activate", false, "start signing with a new key as soon as its record is seen in DNS")
	oversign := fs.String("oversign", "default", oversignUsage)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if len(pos) != 1 {
			return usagef("usage: dkimd domain add DOMAIN [--auto-activate] [--oversign default|from-only|none|FIELD,...]")
		}
		dom, err := d.admin.AddDomain(ctx, admin.CLI(), store.Domain{Name: pos[0], AutoActivate: *auto, Oversign: *oversign})
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, dom)
		}
		_, err = fmt.Fprintf(e.Stdout, "added %s\n", dom.Name)
		return err
	})
}

func domainRemove(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("domain remove", e)
	df := addDataFlags(fs, e)
	force := fs.Bool("force", false, "also remove the domain's keys (private keys included) and users")
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if len(pos) != 1 {
			return usagef("usage: dkimd domain remove DOMAIN [--force]")
		}
		if err := d.admin.RemoveDomain(ctx, admin.CLI(), pos[0], *force); err != nil {
			return err
		}
		_, err := fmt.Fprintf(e.Stdout, "removed %s\n", pos[0])
		return err
	})
}

func domainSet(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("domain set", e)
	df := addDataFlags(fs, e)
	auto := fs.String("auto-activate", "", "true or false")
	oversign := fs.String("oversign", "", oversignUsage)
	pf := addPublishFlags(fs)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if len(pos) != 1 || (!given["auto-activate"] && !given["oversign"] && !pf.set()) ||
			(given["auto-activate"] && *auto != "true" && *auto != "false") {
			return usagef("usage: dkimd domain set DOMAIN [--auto-activate=true|false] [--oversign default|from-only|none|FIELD,...] [--publish manual|delegated|update] [--dns-zone ZONE] [--rotate-every 90d] [--update-server HOST:PORT --tsig-name NAME --tsig-secret-file FILE]")
		}
		var dom store.Domain
		var err error
		if given["oversign"] {
			if dom, err = d.admin.SetOversign(ctx, admin.CLI(), pos[0], *oversign); err != nil {
				return err
			}
		}
		if given["auto-activate"] {
			if dom, err = d.admin.SetAutoActivate(ctx, admin.CLI(), pos[0], *auto == "true"); err != nil {
				return err
			}
		}
		if pf.set() {
			r, err := pf.request()
			if err != nil {
				return err
			}
			if dom, err = d.admin.SetPublishing(ctx, admin.CLI(), pos[0], r); err != nil {
				return err
			}
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, dom)
		}
		if given["auto-activate"] || given["oversign"] {
			if _, err := fmt.Fprintf(e.Stdout, "%s: auto-activate %t, oversign %s\n", dom.Name, dom.AutoActivate, dom.OversignText()); err != nil {
				return err
			}
		}
		if pf.set() {
			return printPublishing(e, dom)
		}
		return nil
	})
}

func domainList(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("domain list", e)
	df := addDataFlags(fs, e)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		ds, err := d.admin.ListDomains(ctx, admin.CLI())
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, ds)
		}
		tw := newTable(e.Stdout, "DOMAIN", "AUTO-ACTIVATE", "OVERSIGN", "PUBLISH", "CREATED")
		for _, dom := range ds {
			fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%s\n", dom.Unicode(), dom.AutoActivate, dom.OversignText(), dom.Publish, day(dom.Created))
		}
		return tw.Flush()
	})
}

func runKey(ctx context.Context, e *Env, args []string) error {
	verbs := map[string]func(context.Context, *Env, []string) error{
		"generate": keyGenerate, "import": keyImport, "list": keyList, "record": keyRecord,
	}
	for verb, state := range map[string]store.KeyState{"retire": store.KeyRetired, "archive": store.KeyArchived} {
		verbs[verb] = keyState(verb, state)
	}
	addLifecycleVerbs(verbs) // activate, revoke, rotate, status, history
	return subcommand(ctx, e, "key", args, verbs)
}

// keyFlags are --domain and --selector, which every key verb names.
func keyFlags(fs interface {
	String(string, string, string) *string
}) (domain, selector *string) {
	return fs.String("domain", "", "domain"), fs.String("selector", "", "selector")
}

func keyGenerate(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key generate", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	alg := fs.String("algorithm", "rsa", "rsa or ed25519")
	bits := fs.Int("bits", 0, "RSA key length: 1024, 2048 (default), 3072 or 4096")
	backend := backendFlag(fs, "sealed", "where the private key lives: sealed (in the database, under the master key) or pkcs11 (made in the --pkcs11-token, never leaving it)")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
			return err
		}
		a, err := keys.ParseAlgorithm(*alg)
		if err != nil {
			return usagef("%v", err)
		}
		b, err := parseBackend(*backend)
		if err != nil {
			return err
		}
		g, err := d.admin.GenerateKey(ctx, admin.CLI(), lifecycle.NewKeyRequest{Domain: *domain, Selector: *selector, Spec: keys.Spec{Algorithm: a, Bits: *bits}, Backend: b})
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, g)
		}
		for _, w := range g.Warnings {
			fmt.Fprintf(e.Stderr, "warning: %s\n", w)
		}
		fmt.Fprintf(e.Stdout, "Generated %s key %s for %s (%s); it is pending until its record is published.\n\n", g.Key.Spec(), g.Key.Selector, g.Key.Domain, g.Key.Location)
		return printPublication(e.Stdout, &keyOutput{Domain: g.Key.Domain, Selector: g.Key.Selector, Algorithm: string(g.Key.Algorithm), Bits: g.Key.Bits, Publication: *g.Record})
	})
}

// keyImport brings in an existing private key (PKCS#1 as opendkim-genkey
// writes it, or PKCS#8), pending like a generated one, so that a site can
// move to dkimd without publishing new records.
func keyImport(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key import", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	file := fs.String("key", "", "private key file (PEM: PKCS#1 or PKCS#8)")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain, "selector", *selector, "key", *file); err != nil {
			return err
		}
		k, err := keys.ReadFile(*file)
		if err != nil {
			return err
		}
		g, err := d.admin.ImportKey(ctx, admin.CLI(), lifecycle.ImportKeyRequest{Domain: *domain, Selector: *selector, Key: k})
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, g)
		}
		for _, w := range g.Warnings {
			fmt.Fprintf(e.Stderr, "warning: %s\n", w)
		}
		fmt.Fprintf(e.Stdout, "Imported %s key %s for %s; it is pending until its record is seen in DNS (key activate).\n\n", g.Key.Spec(), g.Key.Selector, g.Key.Domain)
		return printPublication(e.Stdout, &keyOutput{Domain: g.Key.Domain, Selector: g.Key.Selector, Algorithm: string(g.Key.Algorithm), Bits: g.Key.Bits, Publication: *g.Record})
	})
}

func keyList(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key list", e)
	df := addDataFlags(fs, e)
	domain := fs.String("domain", "", "only this domain's keys")
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if *domain == "" && len(pos) == 1 {
			*domain = pos[0]
		}
		ks, err := d.admin.ListKeys(ctx, admin.CLI(), *domain)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, ks)
		}
		tw := newTable(e.Stdout, "DOMAIN", "SELECTOR", "KEY", "STATE", "CREATED", "ACTIVATED", "LOCATION")
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Domain, k.Selector, k.Spec(), k.State, day(k.Created), day(k.Activated), k.Location)
		}
		return tw.Flush()
	})
}

func keyRecord(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key record", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	format := fs.String("format", "", "value, zone or json (default: all forms, for people)")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if *domain != "" && *selector == "" {
			// A delegated domain's records are its two CNAMEs.
			f := *format
			if *df.asJSON {
				f = "json"
			}
			return delegatedRecord(ctx, e, d, *domain, f)
		}
		if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
			return err
		}
		k, p, err := d.admin.KeyRecord(ctx, admin.CLI(), *domain, *selector)
		if err != nil {
			return err
		}
		if p == nil {
			fmt.Fprintf(e.Stdout, "Key %s of %s is archived: remove its record %s from DNS.\n", k.Selector, k.Domain, k.RecordName())
			return nil
		}
		if k.State == store.KeyRevoked && *format == "" && !*df.asJSON {
			fmt.Fprintf(e.Stdout, "Key %s of %s is revoked: publish its record with an empty p= so that old signatures stop verifying.\n\n", k.Selector, k.Domain)
		}
		f := *format
		if *df.asJSON {
			f = "json"
		}
		return printKey(e, &keyOutput{Domain: k.Domain, Selector: k.Selector, Algorithm: string(k.Algorithm), Bits: k.Bits, Publication: *p}, f, f == "json")
	})
}

func keyState(verb string, to store.KeyState) func(context.Context, *Env, []string) error {
	return func(ctx context.Context, e *Env, args []string) error {
		fs := newFlags("key "+verb, e)
		df := addDataFlags(fs, e)
		domain, selector := keyFlags(fs)
		return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
			if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
				return err
			}
			k, err := d.admin.SetKeyState(ctx, admin.CLI(), *domain, *selector, to, false)
			if err != nil {
				return err
			}
			if *df.asJSON {
				return writeJSON(e.Stdout, k)
			}
			_, err = fmt.Fprintf(e.Stdout, "key %s of %s is now %s\n", k.Selector, k.Domain, k.State)
			return err
		})
	}
}

func newTable(w io.Writer, heads ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	return tw
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func joinSorted(s []string, sep string) string {
	sort.Strings(s)
	return strings.Join(s, sep)
}
