package cli

import (
	"context"
	"errors"
	"os"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/store"
)

func runDNS(ctx context.Context, e *Env, args []string) error {
	return subcommand(ctx, e, "dns", args, map[string]func(context.Context, *Env, []string) error{"check": dnsCheck})
}

// dnsCheck checks a published record, against a key file (like
// opendkim-testkey), a stored key, or on its own. Exit 0 only when the
// record is published and matches everywhere.
func dnsCheck(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("dns check", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	keyFile := fs.String("key", "", "private key file to compare with (default: the stored key, if the data directory has one)")
	resolver := fs.String("resolver", "", "DNS server HOST:PORT (default: the system's)")
	if _, err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if *domain != "" && *selector == "" && *keyFile == "" {
		// A delegated domain: both CNAMEs and the chains behind them.
		return delegationCheck(ctx, e, df, *domain, *resolver)
	}
	if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
		return err
	}
	d, sel, err := checkNames(*domain, *selector)
	if err != nil {
		return err
	}
	o := dnscheck.Options{Domain: d, Selector: sel, Resolver: *resolver}
	switch {
	case *keyFile != "":
		k, err := keys.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		o.PublicKey = k.Public()
	default:
		k, found, err := storedKey(ctx, e, df, d, sel)
		if err != nil {
			return err
		}
		if found {
			if o.PublicKey, err = lifecycle.PublicKey(k); err != nil {
				return err
			}
			if k.State == store.KeyRevoked || k.State == store.KeyArchived {
				o.Expect = dnscheck.ExpectRevoked
			}
		}
	}
	r, err := dnscheck.Check(ctx, o)
	if err != nil {
		return err
	}
	if *df.asJSON {
		err = writeJSON(e.Stdout, r)
	} else {
		err = r.WriteText(e.Stdout)
	}
	if err != nil {
		return err
	}
	if r.ExitCode() != 0 {
		return resultError{r.Summary}
	}
	return nil
}

// storedKey looks the key up in the data directory, without creating one
// where there is none.
func storedKey(ctx context.Context, e *Env, df dataFlags, domain, selector string) (store.Key, bool, error) {
	if _, err := os.Stat(datadir.New(*df.dir).Database()); err != nil && *df.database == "" {
		return store.Key{}, false, nil
	}
	d, err := openData(ctx, e, df, nil)
	if err != nil {
		return store.Key{}, false, err
	}
	defer d.Close()
	k, err := d.admin.GetKey(ctx, admin.CLI(), domain, selector)
	if errors.Is(err, store.ErrNotFound) {
		return k, false, nil
	}
	return k, err == nil, err
}
