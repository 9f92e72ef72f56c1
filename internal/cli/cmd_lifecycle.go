package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/server"
	"github.com/dkimd/dkimd/internal/store"
)

// addLifecycleVerbs adds the key verbs of the lifecycle: rotate, status
// and history, and activate and revoke in their lifecycle form (activate
// retires the key a rotation replaces, and audits it; revoke waits until
// it is safe and shows the record to publish).
func addLifecycleVerbs(verbs map[string]func(context.Context, *Env, []string) error) {
	verbs["rotate"] = keyRotate
	verbs["status"] = keyStatus
	verbs["history"] = keyHistory
	verbs["activate"] = keyActivate
	verbs["revoke"] = keyRevoke
	verbs["delete"] = keyDelete
}

// keyDelete removes a pending key made by mistake: one that never signed
// and whose record was never seen in DNS. Any other key is revoked.
func keyDelete(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key delete", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	resolver := fs.String("resolver", "", "DNS server HOST:PORT for the last look at the record (default: the system's)")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
			return err
		}
		a, _, err := d.services(server.Wiring{DNS: lifecycle.DNS{Resolver: *resolver}})
		if err != nil {
			return err
		}
		if err := a.DeleteKey(ctx, admin.CLI(), *domain, *selector); err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, map[string]any{"domain": *domain, "selector": *selector, "deleted": true})
		}
		fmt.Fprintf(e.Stdout, "Key %s of %s is deleted, with its private key; it never signed and its record was never seen in DNS.\n", *selector, *domain)
		return nil
	})
}

// days is a duration flag that also takes days: "7d", "36h", "1d12h".
type days struct{ d *time.Duration }

func (f days) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f days) Set(s string) error {
	var total time.Duration
	if n, rest, ok := strings.Cut(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return fmt.Errorf("bad number of days %q", n)
		}
		total, s = time.Duration(v)*24*time.Hour, rest
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		total += d
	}
	if total <= 0 {
		return fmt.Errorf("want a positive duration")
	}
	*f.d = total
	return nil
}

// policyFlags are the lifecycle settings, defaults as in lifecycle.Settings.
func policyFlags(fs *flag.FlagSet) *lifecycle.Settings {
	p := lifecycle.Settings{
		SignatureLifetime: lifecycle.DefaultSignatureLifetime,
		QueueLifetime:     lifecycle.DefaultQueueLifetime,
		MaxAge:            lifecycle.DefaultMaxAge,
	}
	fs.Var(days{&p.SignatureLifetime}, "signature-lifetime", "how long signatures stay valid (x=), as the signer sets it (default 7d)")
	fs.Var(days{&p.QueueLifetime}, "queue-lifetime", "how long a signed message may wait in queues (default 5d)")
	fs.Var(days{&p.MaxAge}, "max-age", "age past which a key is warned about as old (default 180d)")
	return &p
}

func keyRotate(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key rotate", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	alg := fs.String("algorithm", "", "rsa or ed25519 (default: that of the key replaced)")
	bits := fs.Int("bits", 0, "RSA key length (default: that of the key replaced, at least 2048)")
	replaces := fs.String("replaces", "", "selector of the active key to replace (default: the only active key of the algorithm)")
	backend := backendFlag(fs, "", "sealed or pkcs11 (default: where the key replaced lives)")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain); err != nil {
			return err
		}
		b, err := parseBackend(*backend)
		if err != nil {
			return err
		}
		var spec keys.Spec
		if *alg != "" {
			a, err := keys.ParseAlgorithm(*alg)
			if err != nil {
				return usagef("%v", err)
			}
			spec.Algorithm = a
		}
		spec.Bits = *bits
		r, err := d.admin.RotateKey(ctx, admin.CLI(), lifecycle.RotateRequest{Domain: *domain, Selector: *selector, Spec: spec, Replaces: *replaces, Backend: b})
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, r)
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(e.Stderr, "warning: %s\n", w)
		}
		k := r.Key
		fmt.Fprintf(e.Stdout, "Generated %s key %s for %s (%s); it is pending until its record is published.\n", k.Spec(), k.Selector, k.Domain, k.Location)
		dom, err := d.admin.GetDomain(ctx, admin.CLI(), k.Domain)
		if err != nil {
			return err
		}
		// Exactly what happens next, by the domain's settings.
		fmt.Fprintln(e.Stdout, lifecycle.AfterRotate(k, r.Replaces, dom.AutoActivate, 0))
		fmt.Fprintln(e.Stdout)
		return printPublication(e.Stdout, &keyOutput{Domain: k.Domain, Selector: k.Selector, Algorithm: string(k.Algorithm), Bits: k.Bits, Publication: *r.Record})
	})
}

func keyStatus(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key status", e)
	df := addDataFlags(fs, e)
	domain := fs.String("domain", "", "domain")
	check := fs.Bool("check", false, "check every pending, active, retired and revoked key in DNS first")
	resolver := fs.String("resolver", "", "DNS server HOST:PORT for --check (default: the system's)")
	p := policyFlags(fs)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if *domain == "" && len(pos) == 1 {
			*domain = pos[0]
		}
		if err := requireFlags("domain", *domain); err != nil {
			return err
		}
		w := server.Wiring{Settings: *p}
		if *check {
			w.DNS = lifecycle.DNS{Resolver: *resolver}
		}
		a, _, err := d.services(w)
		if err != nil {
			return err
		}
		if *check {
			ks, err := a.ListKeys(ctx, admin.CLI(), *domain)
			if err != nil {
				return err
			}
			for _, k := range ks {
				if k.State == store.KeyArchived {
					continue
				}
				if _, err := a.CheckKeyNow(ctx, admin.CLI(), k.Domain, k.Selector); err != nil {
					return err
				}
			}
		}
		sts, err := a.KeyStatus(ctx, admin.CLI(), *domain)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, sts)
		}
		tw := newTable(e.Stdout, "SELECTOR", "KEY", "STATE", "AGE", "DNS", "CHECKED", "SAFE TO REVOKE")
		var notes []string
		for _, st := range sts {
			k := st.Key
			dnsStatus, checked := "-", "-"
			if c := st.LastCheck; c != nil {
				dnsStatus, checked = c.Status, day(c.Time)
			}
			if st.Alert {
				dnsStatus = "ALERT " + dnsStatus
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%dd\t%s\t%s\t%s\n", k.Selector, k.Spec(), k.State, st.Age.Days(), dnsStatus, checked, day(st.SafeToRevoke))
			for _, w := range st.Warnings {
				notes = append(notes, fmt.Sprintf("%s: %s: %s", k.Selector, w.Code, w.Message))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintf(e.Stdout, "warning: %s\n", n)
		}
		return nil
	})
}

func keyHistory(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key history", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	limit := fs.Int("limit", store.DefaultDNSCheckLimit, "how many checks, newest first")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
			return err
		}
		cs, err := d.admin.CheckHistory(ctx, admin.CLI(), *domain, *selector, *limit)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, cs)
		}
		tw := newTable(e.Stdout, "TIME", "STATUS", "OK", "SUMMARY")
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", c.Time.UTC().Format(time.RFC3339), c.Status, c.OK, c.Summary)
		}
		return tw.Flush()
	})
}

func keyActivate(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key activate", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	force := fs.Bool("force", false, "start signing without seeing the record in DNS")
	resolver := fs.String("resolver", "", "DNS server HOST:PORT for the check (default: the system's)")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
			return err
		}
		var w server.Wiring
		if !*force {
			w.DNS = lifecycle.DNS{Resolver: *resolver}
		}
		a, _, err := d.services(w)
		if err != nil {
			return err
		}
		changed, err := a.ActivateKey(ctx, admin.CLI(), *domain, *selector, *force)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, changed)
		}
		for _, k := range changed {
			fmt.Fprintf(e.Stdout, "key %s of %s is now %s\n", k.Selector, k.Domain, k.State)
		}
		for _, k := range changed[1:] {
			if k.State == store.KeyRetired {
				fmt.Fprintf(e.Stdout, "%s, which %s replaces, no longer signs; keep its record published until it is safe to revoke (%s)\n",
					k.Selector, changed[0].Selector, a.LifecycleSettings().SafeToRevoke(k).UTC().Format("2006-01-02 15:04 MST"))
			}
		}
		return nil
	})
}

func keyRevoke(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("key revoke", e)
	df := addDataFlags(fs, e)
	domain, selector := keyFlags(fs)
	force := fs.Bool("force", false, "revoke now: an active key (compromised), or a retired key whose signatures may still be checked")
	destroy := fs.Bool("destroy", false, "also delete the key from its PKCS#11 token (a key already revoked or archived: delete only)")
	p := policyFlags(fs)
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
			return err
		}
		a, _, err := d.services(server.Wiring{Settings: *p})
		if err != nil {
			return err
		}
		if *destroy {
			// A key revoked earlier is only destroyed now.
			k, err := a.GetKey(ctx, admin.CLI(), *domain, *selector)
			if err != nil {
				return err
			}
			if k.State == store.KeyRevoked || k.State == store.KeyArchived {
				if *df.asJSON {
					k, err := a.DestroyKey(ctx, admin.CLI(), *domain, *selector)
					if err != nil {
						return err
					}
					return writeJSON(e.Stdout, k)
				}
				return destroyKey(ctx, e, a, *domain, *selector)
			}
		}
		k, rec, err := a.RevokeKey(ctx, admin.CLI(), *domain, *selector, *force)
		if err != nil {
			return err
		}
		out := &keyOutput{Domain: k.Domain, Selector: k.Selector, Algorithm: string(k.Algorithm), Bits: k.Bits, Publication: *rec}
		if *df.asJSON {
			if *destroy {
				if _, err := a.DestroyKey(ctx, admin.CLI(), *domain, *selector); err != nil {
					return fmt.Errorf("key revoked, but not destroyed: %w", err)
				}
			}
			return writeJSON(e.Stdout, out)
		}
		fmt.Fprintf(e.Stdout, "Key %s of %s is revoked. Replace its record with this one (empty p=) so that old signatures stop verifying;\n"+
			"dkimd archives the key once DNS serves it (or: dkimd key archive).\n\n", k.Selector, k.Domain)
		if err := printPublication(e.Stdout, out); err != nil {
			return err
		}
		if *destroy {
			fmt.Fprintln(e.Stdout)
			if err := destroyKey(ctx, e, a, *domain, *selector); err != nil {
				return fmt.Errorf("key revoked, but not destroyed: %w", err)
			}
		}
		return nil
	})
}

// destroyKey deletes a revoked or archived key from its PKCS#11 token.
func destroyKey(ctx context.Context, e *Env, a *admin.Service, domain, selector string) error {
	k, err := a.DestroyKey(ctx, admin.CLI(), domain, selector)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.Stdout, "Key %s of %s is deleted from PKCS#11 token %q (object %q): it can never sign again.\n", k.Selector, k.Domain, k.Location.Token, k.Location.Label)
	return err
}
