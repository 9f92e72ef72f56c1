package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

func runUser(ctx context.Context, e *Env, args []string) error {
	return subcommand(ctx, e, "user", args, map[string]func(context.Context, *Env, []string) error{
		"add": userAdd, "set": userSet, "list": userList, "remove": userRemove,
	})
}

// userFlags are the settable fields of an outgoing user.
type userFlags struct {
	passwordStdin *bool
	ips           listFlag
	reauth        *bool
	auth          *string
	identity      *string
	selector      *string
	allowDomains  listFlag
	foreign       *bool
	anyNetwork    *bool
	disabled      *bool
}

func addUserFlags(fs *flag.FlagSet, set bool) *userFlags {
	u := &userFlags{}
	u.passwordStdin = fs.Bool("password-stdin", false, "read the SMTP AUTH password from the first line of standard input")
	fs.Var(&u.ips, "ip", "source address or CIDR network the user connects from (repeatable)")
	u.reauth = fs.Bool("reauth", false, "a re-authenticating server relaying for many senders (its mail is never signed)")
	u.identity = fs.String("identity-header", "", "header naming each sender, for --reauth (default X-AuthUser)")
	u.selector = fs.String("dkim-selector", "", "selector of an owner-domain key that signs this user's mail (\"\" removes it)")
	fs.Var(&u.allowDomains, "allow-domain", "another domain the user may sign as (repeatable; replaces the list)")
	u.foreign = fs.Bool("allow-foreign-from", false, "allow envelope and From domains the user does not own (never signed as them)")
	u.anyNetwork = fs.Bool("allow-any-network", false, "for this change, allow --ip 0.0.0.0/0 or ::/0 (an open relay) and networks overlapping another domain's users")
	if set {
		u.auth = fs.String("auth", "", "change the authentication: password, ip or reauth")
		u.disabled = fs.Bool("disabled", false, "refuse the user's mail (--disabled=false enables it)")
	} else {
		u.disabled = fs.Bool("disabled", false, "create the user disabled")
	}
	return u
}

// change builds the admin.UserChange from the flags given on the command
// line, and only those.
func (u *userFlags) change(fs *flag.FlagSet, e *Env) (admin.UserChange, error) {
	var c admin.UserChange
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if *u.passwordStdin {
		line, err := bufio.NewReader(e.Stdin).ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return c, fmt.Errorf("--password-stdin: no password on standard input (%v)", err)
		}
		c.Password = &line
	}
	if given["ip"] {
		nets := []string(u.ips)
		c.Networks = &nets
	}
	if given["identity-header"] {
		c.IdentityHeader = u.identity
	}
	if given["dkim-selector"] {
		c.Selector = u.selector
	}
	if given["allow-domain"] {
		ds := []string(u.allowDomains)
		c.GrantedDomains = &ds
	}
	if given["allow-foreign-from"] {
		c.AllowForeignFrom = u.foreign
	}
	if given["disabled"] {
		enabled := !*u.disabled
		c.Enabled = &enabled
	}
	c.AllowAnyNetwork = *u.anyNetwork
	var kind store.AuthKind
	switch {
	case *u.reauth:
		kind = store.AuthReauth
	case u.auth != nil && *u.auth != "":
		kind = store.AuthKind(*u.auth)
	}
	if kind != "" {
		c.Auth = &kind
	}
	return c, nil
}

func userAdd(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("user add", e)
	df := addDataFlags(fs, e)
	domain := fs.String("domain", "", "owner domain")
	name := fs.String("name", "", "user name, also the SMTP AUTH username; unique across dkimd")
	uf := addUserFlags(fs, false)
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if err := requireFlags("domain", *domain, "name", *name); err != nil {
			return err
		}
		c, err := uf.change(fs, e)
		if err != nil {
			return err
		}
		if c.Auth == nil {
			var kind store.AuthKind
			switch {
			case c.Password != nil:
				kind = store.AuthPassword
			case c.Networks != nil:
				kind = store.AuthIP
			default:
				return usagef("say how the user authenticates: --password-stdin, --ip CIDR or --reauth")
			}
			c.Auth = &kind
		}
		u, err := d.admin.AddUser(ctx, admin.CLI(), *name, *domain, c)
		if err != nil {
			return err
		}
		return printUser(e, u, *df.asJSON, "added")
	})
}

func userSet(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("user set", e)
	df := addDataFlags(fs, e)
	name := fs.String("name", "", "user name (or give it as the argument)")
	uf := addUserFlags(fs, true)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if *name == "" && len(pos) == 1 {
			*name = pos[0]
		}
		if *name == "" {
			return usagef("usage: dkimd user set NAME [flags]")
		}
		c, err := uf.change(fs, e)
		if err != nil {
			return err
		}
		u, err := d.admin.UpdateUser(ctx, admin.CLI(), *name, c)
		if err != nil {
			return err
		}
		return printUser(e, u, *df.asJSON, "updated")
	})
}

func printUser(e *Env, u store.OutgoingUser, asJSON bool, verb string) error {
	if asJSON {
		return writeJSON(e.Stdout, u)
	}
	sel := u.Selector
	if sel == "" {
		sel = "(none)"
	}
	_, err := fmt.Fprintf(e.Stdout, "%s user %s of %s: auth %s, DKIM selector %s, enabled %t\n", verb, u.Name, u.Domain, u.Auth, sel, u.Enabled)
	return err
}

func userList(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("user list", e)
	df := addDataFlags(fs, e)
	domain := fs.String("domain", "", "only this domain's users")
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if *domain == "" && len(pos) == 1 {
			*domain = pos[0]
		}
		us, err := d.admin.ListUsers(ctx, admin.CLI(), *domain)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, us)
		}
		tw := newTable(e.Stdout, "NAME", "DOMAIN", "AUTH", "SELECTOR", "GRANTED", "ENABLED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\n", u.Name, u.Domain, u.Auth, orDash(u.Selector), orDash(strings.Join(u.GrantedDomains, ",")), u.Enabled)
		}
		return tw.Flush()
	})
}

func userRemove(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("user remove", e)
	df := addDataFlags(fs, e)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if len(pos) != 1 {
			return usagef("usage: dkimd user remove NAME")
		}
		if err := d.admin.RemoveUser(ctx, admin.CLI(), pos[0]); err != nil {
			return err
		}
		_, err := fmt.Fprintf(e.Stdout, "removed user %s\n", pos[0])
		return err
	})
}

func runAccount(ctx context.Context, e *Env, args []string) error {
	return subcommand(ctx, e, "account", args, map[string]func(context.Context, *Env, []string) error{
		"add": accountAdd, "list": accountList, "remove": accountRemove, "token": accountToken, "password": accountPassword,
	})
}

func accountAdd(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("account add", e)
	df := addDataFlags(fs, e)
	role := fs.String("role", "", "admin (everything) or domain (only the --domain list)")
	var domains listFlag
	fs.Var(&domains, "domain", "a domain a domain admin manages (repeatable)")
	pwStdin := fs.Bool("password-stdin", false, "read the login password from standard input (else: token only)")
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if len(pos) != 1 || *role == "" {
			return usagef("usage: dkimd account add NAME --role admin|domain [--domain D ...] [--password-stdin]")
		}
		r := admin.NewAccountRequest{Name: pos[0], Role: store.Role(*role), Domains: domains}
		if *pwStdin {
			line, _ := bufio.NewReader(e.Stdin).ReadString('\n')
			if r.Password = strings.TrimRight(line, "\r\n"); r.Password == "" {
				return fmt.Errorf("--password-stdin: no password on standard input")
			}
		}
		acc, err := d.admin.AddAccount(ctx, admin.CLI(), r)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, acc)
		}
		_, err = fmt.Fprintf(e.Stdout, "added %s account %s\n", acc.Role, acc.Name)
		return err
	})
}

func accountList(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("account list", e)
	df := addDataFlags(fs, e)
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		as, err := d.admin.ListAccounts(ctx, admin.CLI())
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, as)
		}
		tw := newTable(e.Stdout, "NAME", "ROLE", "DOMAINS", "PASSWORD", "ENABLED")
		for _, a := range as {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\n", a.Name, a.Role, orDash(strings.Join(a.Domains, ",")), a.PasswordHash != "", a.Enabled)
		}
		return tw.Flush()
	})
}

func accountRemove(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("account remove", e)
	df := addDataFlags(fs, e)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if len(pos) != 1 {
			return usagef("usage: dkimd account remove NAME")
		}
		if err := d.admin.RemoveAccount(ctx, admin.CLI(), pos[0]); err != nil {
			return err
		}
		_, err := fmt.Fprintf(e.Stdout, "removed account %s\n", pos[0])
		return err
	})
}

func accountPassword(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("account password", e)
	df := addDataFlags(fs, e)
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if len(pos) != 1 {
			return usagef("usage: dkimd account password NAME < password")
		}
		line, _ := bufio.NewReader(e.Stdin).ReadString('\n')
		if err := d.admin.SetAccountPassword(ctx, admin.CLI(), pos[0], strings.TrimRight(line, "\r\n")); err != nil {
			return err
		}
		_, err := fmt.Fprintf(e.Stdout, "password of %s changed; its panel sessions have ended (API tokens are kept)\n", pos[0])
		return err
	})
}

func accountToken(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("account token", e)
	df := addDataFlags(fs, e)
	label := fs.String("label", "", "what the token is for")
	ttl := fs.Duration("ttl", 0, "lifetime, e.g. 720h (default: until removed)")
	return withData(ctx, e, fs, df, args, func(d *data, pos []string) error {
		if len(pos) != 1 {
			return usagef("usage: dkimd account token NAME [--label L] [--ttl D]")
		}
		tok, t, err := d.admin.NewToken(ctx, admin.CLI(), pos[0], *label, *ttl)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, struct {
				Token string      `json:"token"`
				Info  store.Token `json:"info"`
			}{tok, t})
		}
		fmt.Fprintln(e.Stderr, "API token for "+t.Account+" (shown once; send it as \"Authorization: Bearer TOKEN\"):")
		_, err = fmt.Fprintln(e.Stdout, tok)
		return err
	})
}

func runAudit(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("audit", e)
	df := addDataFlags(fs, e)
	var f store.AuditFilter
	fs.StringVar(&f.Domain, "domain", "", "only this domain")
	fs.StringVar(&f.Actor, "actor", "", "only this actor")
	fs.StringVar(&f.Action, "action", "", "only this action, e.g. key.state")
	since := fs.Duration("since", 0, "only the last D, e.g. 24h")
	fs.IntVar(&f.Limit, "limit", 50, "at most N entries")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		if *since > 0 {
			f.Since = time.Now().Add(-*since)
		}
		es, err := d.admin.ListAudit(ctx, admin.CLI(), f)
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, es)
		}
		tw := newTable(e.Stdout, "TIME", "ACTOR", "REMOTE", "ACTION", "OBJECT", "DETAIL")
		for _, a := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.UTC().Format(time.RFC3339), a.Actor, orDash(a.Remote), a.Action, a.ObjectKind+" "+a.ObjectID, a.Detail)
		}
		return tw.Flush()
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runPolicy(ctx context.Context, e *Env, args []string) error {
	return subcommand(ctx, e, "policy", args, map[string]func(context.Context, *Env, []string) error{"explain": policyExplain})
}

// policyExplain answers which key would sign a user's mail with a From
// address, and why, without sending mail: for a user named by name (the
// relay's view), or as the milter would see it, by SASL login or client
// address.
func policyExplain(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("policy explain", e)
	df := addDataFlags(fs, e)
	user := fs.String("user", "", "outgoing user name")
	from := fs.String("from", "", "From header value, e.g. \"Alice <alice@example.com>\"")
	var snd milter.Sender
	fs.StringVar(&snd.AuthName, "auth-user", "", "as the milter: the SASL login the MTA reports ({auth_authen})")
	fs.StringVar(&snd.ClientAddr, "client-ip", "", "as the milter: the SMTP client's address ({client_addr})")
	fs.StringVar(&snd.Daemon, "daemon-name", "", "as the milter: the MTA listener's {daemon_name}, for --trusted-daemon")
	trusted := fs.String("trusted-daemon", "", "as the milter with --milter-trusted-daemon NAME")
	return withData(ctx, e, fs, df, args, func(d *data, _ []string) error {
		asMilter := snd.AuthName != "" || snd.ClientAddr != ""
		if *user != "" && asMilter {
			return usagef("give --user, or --auth-user/--client-ip (as the milter would see the sender), not both")
		}
		if !asMilter {
			if err := requireFlags("user", *user, "from", *from); err != nil {
				return err
			}
		} else if err := requireFlags("from", *from); err != nil {
			return err
		}
		var dec policy.Decision
		var err error
		if asMilter {
			if dec = milter.Decide(ctx, d.db, snd, *trusted, *from); dec.Err != nil {
				err = dec.Err
			}
		} else {
			dec, err = d.admin.Explain(ctx, admin.CLI(), *user, *from)
		}
		if err != nil {
			return err
		}
		if *df.asJSON {
			return writeJSON(e.Stdout, dec)
		}
		switch dec.Outcome {
		case policy.OutcomeRefused:
			_, err = fmt.Fprintf(e.Stdout, "refused (%s): %s\n", dec.Reason, dec.Message)
			return err
		case policy.OutcomeSigned:
		default:
			_, err = fmt.Fprintf(e.Stdout, "not signed (%s): %s\n", dec.Reason, dec.Message)
			return err
		}
		fmt.Fprintf(e.Stdout, "signed as d=%s (%s): %s\n", dec.Domain, dec.Reason, dec.Message)
		for _, s := range dec.Sign {
			fmt.Fprintf(e.Stdout, "  s=%s (%s)\n", s.Selector, s.Algorithm)
		}
		for _, w := range dec.Warnings {
			word := "warning"
			if w.Bad {
				word = "fails"
			}
			fmt.Fprintf(e.Stdout, "  %s: %s\n", word, w.Message)
		}
		return nil
	})
}
