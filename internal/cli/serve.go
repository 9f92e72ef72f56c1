package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/dnsserver"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/relay"
	"github.com/dkimd/dkimd/internal/server"
)

// runServe parses serve's flags and config file, opens the data directory
// and hands the rest to server.Run; the errors of its options are usage
// errors.
func runServe(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("serve", e)
	df := addDataFlags(fs, e)
	var o server.Options
	fs.StringVar(&o.ListenHTTP, "listen-http", "127.0.0.1:8080", "address of the control panel, JSON API and /metrics")
	fs.StringVar(&o.Resolver, "resolver", "", "DNS server HOST:PORT for record checks (default: the system's)")
	fs.DurationVar(&o.CheckInterval, "check-interval", time.Hour, "how often published keys are re-checked in DNS (pending keys: every 5 minutes)")
	fs.BoolVar(&o.Failover, "failover", false, "when an active key's record breaks, switch to a published standby key of the domain")
	var maxNet networkLimitFlag
	fs.Var(&maxNet, "max-user-network", "IPV4,IPV6: the widest networks, as prefix lengths, a domain admin may give a source-IP or re-authenticating user; admins may go wider (default 24,48)")
	openssl := openSSLFlag(fs)
	pol := policyFlags(fs)
	mf := addMailFlags(fs)
	dnsf := addDNSFlags(fs)
	logFormat := fs.String("log-format", "text", "text or json")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	config := configFlag(fs, e)
	if _, err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if *config != "" {
		if err := applyConfig(fs, *config); err != nil {
			return err
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(e.Stderr, hopts)
	case "json":
		h = slog.NewJSONHandler(e.Stderr, hopts)
	default:
		return usagef("--log-format %q: want text or json", *logFormat)
	}
	log := slog.New(h)

	d, err := openData(ctx, e, df, log)
	if err != nil {
		return err
	}
	defer d.Close()
	lib, library, err := openssl.load()
	if err != nil {
		return err
	}
	o.Data = server.Data{Dir: d.dir, Store: d.db, PG: d.pg, Master: d.master, Token: d.token}
	o.MaxUserNetwork = admin.NetworkLimit(maxNet)
	o.OpenSSL, o.Library = lib, library
	o.Settings, o.Mail, o.DNS = *pol, *mf, *dnsf
	o.Notice, o.Log = e.Stderr, log
	err = server.Run(ctx, o)
	if errors.Is(err, server.ErrOption) {
		return usageError{err.Error()}
	}
	return err
}

// mailOptions are serve's flags for receiving and delivering mail.
func addMailFlags(fs *flag.FlagSet) *server.MailOptions {
	m := &server.MailOptions{}
	fs.DurationVar(&m.QueueLease, "queue-lease", time.Minute, "with --database: how long a node holds a message it is delivering without renewing "+
		"(renewed every third of it); a node that dies gives its messages to the others this long after")
	fs.StringVar(&m.Submission, "listen-submission", ":587", `submission with STARTTLS and AUTH ("" to turn off)`)
	fs.StringVar(&m.Submissions, "listen-submissions", ":465", `submission over implicit TLS ("" to turn off)`)
	fs.StringVar(&m.Relay, "listen-relay", ":2525", `relay for IP-authenticated servers ("" to turn off)`)
	fs.StringVar(&m.Hostname, "hostname", "", "name in the SMTP greeting, Received fields and the self-signed certificate (default: the host name)")
	fs.StringVar(&m.CertFile, "tls-cert", "", "TLS certificate chain (PEM); default: a self-signed certificate made in the data directory")
	fs.StringVar(&m.KeyFile, "tls-key", "", "TLS private key (PEM) for --tls-cert")
	fs.StringVar(&m.SmartHost, "smarthost", "", "deliver everything through HOST:PORT (default: to each recipient domain's MX)")
	fs.StringVar(&m.SmartHostTLS, "smarthost-tls", "opportunistic", "opportunistic, required, implicit or none")
	fs.StringVar(&m.SmartHostUser, "smarthost-user", "", "AUTH PLAIN user for the smart host")
	fs.StringVar(&m.SmartHostPasswordFile, "smarthost-password-file", "", "file holding the smart host password")
	fs.StringVar(&m.MXResolver, "mx-resolver", "", "DNS server HOST:PORT for MX lookups (default: /etc/resolv.conf)")
	fs.BoolVar(&m.AllowInsecureAuth, "allow-insecure-auth", false, "allow AUTH without TLS (only for tests on loopback)")
	fs.IntVar(&m.MessagesPerHour, "messages-per-hour", relay.DefaultMessagesPerHour, "messages one outgoing user may send per hour on this node, or on the cluster with --database (-1: no limit)")
	fs.IntVar(&m.MessagesPerDay, "messages-per-day", relay.DefaultMessagesPerDay, "messages one outgoing user may send per UTC day on this node, or on the cluster with --database (-1: no limit)")
	fs.IntVar(&m.MaxConnections, "max-connections", relay.DefaultMaxConnections, "concurrent connections on each mail listener (each has its own budget)")
	fs.IntVar(&m.MaxConnectionsPerIP, "max-connections-per-ip", relay.DefaultMaxConnectionsPerIP, "concurrent connections from one address (IPv6: one /64) on each mail listener")
	fs.DurationVar(&m.PreAuthIdleTimeout, "preauth-idle-timeout", relay.DefaultPreAuthIdleTimeout, "idle timeout of a mail connection until AUTH succeeds (on the relay port: until MAIL is accepted); 5m after that")
	fs.StringVar(&m.MilterAddr, "listen-milter", "", `milter socket for Postfix or Sendmail: unix:/path or inet:HOST:PORT ("" to turn off)`)
	m.MilterSocketMode = 0o660
	fs.Func("milter-socket-mode", "permissions of a unix: milter socket, octal (default 0660: the MTA's user must be in dkimd's group)", func(v string) error {
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n == 0 || n > 0o777 {
			return fmt.Errorf("want an octal mode such as 0660")
		}
		m.MilterSocketMode = os.FileMode(n)
		return nil
	})
	fs.StringVar(&m.MilterTrustedDaemon, "milter-trusted-daemon", "", "sign only mail from the MTA listener with this {daemon_name} (Postfix milter_macro_daemon_name); default: every listener")
	fs.Func("milter-on-error", "when a signature is due and cannot be made: tempfail (the MTA retries; the default) or accept (pass unsigned)", func(v string) error {
		oe, err := milter.ParseOnError(v)
		if err != nil {
			return fmt.Errorf("want tempfail or accept")
		}
		m.MilterOnError = oe
		return nil
	})
	return m
}

// nameServers is --dns-ns, repeatable: "ns1.dkim.provider.example=192.0.2.1,2001:db8::1"
// (addresses for a name server inside the zone) or a bare host name.
type nameServers []dnsserver.NameServer

func (n *nameServers) String() string {
	var parts []string
	for _, ns := range *n {
		parts = append(parts, ns.Name)
	}
	return strings.Join(parts, " ")
}

func (n *nameServers) Set(v string) error {
	name, addrs, _ := strings.Cut(v, "=")
	ns := dnsserver.NameServer{Name: strings.TrimSpace(name)}
	if ns.Name == "" {
		return fmt.Errorf("%q: want NAME or NAME=ADDR[,ADDR]", v)
	}
	if addrs != "" {
		for _, a := range strings.Split(addrs, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(a))
			if err != nil {
				return fmt.Errorf("%q: %v", v, err)
			}
			ns.Addrs = append(ns.Addrs, ip)
		}
	}
	*n = append(*n, ns)
	return nil
}

func addDNSFlags(fs *flag.FlagSet) *server.DNSOptions {
	f := &server.DNSOptions{}
	fs.StringVar(&f.Listen, "listen-dns", "", "serve the delegated DKIM zone on this address, UDP and TCP (off by default), e.g. :53")
	fs.StringVar(&f.Zone, "dns-zone", "", "the delegated zone dkimd serves, e.g. dkim.provider.example")
	fs.Var((*nameServers)(&f.NameServers), "dns-ns", "a name server of the zone, NAME or NAME=ADDR[,ADDR] for one inside the zone (repeat for each)")
	fs.StringVar(&f.Hostmaster, "dns-hostmaster", "", "the zone's contact address for its SOA record (default hostmaster@ZONE)")
	fs.DurationVar(&f.Refresh, "dns-refresh", server.DefaultDNSRefresh, "how often the zone's records are re-read from the database")
	fs.DurationVar(&f.RotateInterval, "rotation-interval", lifecycle.DefaultRotationInterval, "how often domains published by delegation or DNS UPDATE are looked at for a rotation step")
	fs.DurationVar(&f.RecordTTL, "rotation-ttl-wait", lifecycle.DefaultRecordTTL, "how long after a new key's record is served everywhere before signing with it (one TTL)")
	return f
}
