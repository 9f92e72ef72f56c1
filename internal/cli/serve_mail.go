package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/delivery"
	"github.com/dkimd/dkimd/internal/keys"

	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/relay"
	"github.com/dkimd/dkimd/internal/store/postgres"
)

// mailFlags are serve's flags for receiving and delivering mail.
type mailFlags struct {
	submission, submissions, relayPort string
	hostname, certFile, keyFile        string
	smarthost, smarthostTLS            string
	smarthostUser, smarthostPassFile   string
	mxResolver                         string
	insecureAuth                       bool
	perHour, perDay                    int
	maxConns, maxConnsPerIP            int
	preAuthIdle                        time.Duration
	queueLease                         time.Duration
	// queueLifetime (how long a message is retried before it bounces) and
	// signatureLifetime (x=) come from the lifecycle flags, which use
	// them to tell when a retired key is safe to revoke.
	queueLifetime, signatureLifetime time.Duration
	// The milter (off unless milterAddr is set).
	milterAddr, milterTrusted string
	milterMode                os.FileMode
	milterOnError             milter.OnError
}

func addMailFlags(fs *flag.FlagSet) *mailFlags {
	m := &mailFlags{}
	fs.DurationVar(&m.queueLease, "queue-lease", time.Minute, "with --database: how long a node holds a message it is delivering without renewing "+
		"(renewed every third of it); a node that dies gives its messages to the others this long after")
	fs.StringVar(&m.submission, "listen-submission", ":587", `submission with STARTTLS and AUTH ("" to turn off)`)
	fs.StringVar(&m.submissions, "listen-submissions", ":465", `submission over implicit TLS ("" to turn off)`)
	fs.StringVar(&m.relayPort, "listen-relay", ":2525", `relay for IP-authenticated servers ("" to turn off)`)
	fs.StringVar(&m.hostname, "hostname", "", "name in the SMTP greeting, Received fields and the self-signed certificate (default: the host name)")
	fs.StringVar(&m.certFile, "tls-cert", "", "TLS certificate chain (PEM); default: a self-signed certificate made in the data directory")
	fs.StringVar(&m.keyFile, "tls-key", "", "TLS private key (PEM) for --tls-cert")
	fs.StringVar(&m.smarthost, "smarthost", "", "deliver everything through HOST:PORT (default: to each recipient domain's MX)")
	fs.StringVar(&m.smarthostTLS, "smarthost-tls", "opportunistic", "opportunistic, required, implicit or none")
	fs.StringVar(&m.smarthostUser, "smarthost-user", "", "AUTH PLAIN user for the smart host")
	fs.StringVar(&m.smarthostPassFile, "smarthost-password-file", "", "file holding the smart host password")
	fs.StringVar(&m.mxResolver, "mx-resolver", "", "DNS server HOST:PORT for MX lookups (default: /etc/resolv.conf)")
	fs.BoolVar(&m.insecureAuth, "allow-insecure-auth", false, "allow AUTH without TLS (only for tests on loopback)")
	fs.IntVar(&m.perHour, "messages-per-hour", relay.DefaultMessagesPerHour, "messages one outgoing user may send per hour on this node, or on the cluster with --database (-1: no limit)")
	fs.IntVar(&m.perDay, "messages-per-day", relay.DefaultMessagesPerDay, "messages one outgoing user may send per UTC day on this node, or on the cluster with --database (-1: no limit)")
	fs.IntVar(&m.maxConns, "max-connections", relay.DefaultMaxConnections, "concurrent connections on each mail listener (each has its own budget)")
	fs.IntVar(&m.maxConnsPerIP, "max-connections-per-ip", relay.DefaultMaxConnectionsPerIP, "concurrent connections from one address (IPv6: one /64) on each mail listener")
	fs.DurationVar(&m.preAuthIdle, "preauth-idle-timeout", relay.DefaultPreAuthIdleTimeout, "idle timeout of a mail connection until AUTH succeeds (on the relay port: until MAIL is accepted); 5m after that")
	fs.StringVar(&m.milterAddr, "listen-milter", "", `milter socket for Postfix or Sendmail: unix:/path or inet:HOST:PORT ("" to turn off)`)
	m.milterMode = 0o660
	fs.Func("milter-socket-mode", "permissions of a unix: milter socket, octal (default 0660: the MTA's user must be in dkimd's group)", func(v string) error {
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n == 0 || n > 0o777 {
			return fmt.Errorf("want an octal mode such as 0660")
		}
		m.milterMode = os.FileMode(n)
		return nil
	})
	fs.StringVar(&m.milterTrusted, "milter-trusted-daemon", "", "sign only mail from the MTA listener with this {daemon_name} (Postfix milter_macro_daemon_name); default: every listener")
	fs.Func("milter-on-error", "when a signature is due and cannot be made: tempfail (the MTA retries; the default) or accept (pass unsigned)", func(v string) error {
		oe, err := milter.ParseOnError(v)
		if err != nil {
			return fmt.Errorf("want tempfail or accept")
		}
		m.milterOnError = oe
		return nil
	})
	return m
}

// mailQueue is the queue serve runs on: the disk spool, or the shared
// queue in PostgreSQL.
type mailQueue interface {
	queue.DeliveryQueue
	Close() error
}

// mail is the running mail side: the queue, the deliverer and the SMTP
// listeners.
type mail struct {
	spool        mailQueue
	relay        *relay.Server
	metrics      *relay.Metrics
	addrs        map[relay.Mode]string
	milter       *milter.Server
	milterAddr   string
	milterStats  *milter.Metrics
	stopDelivery context.CancelFunc
	delivered    chan struct{} // closed when delivery has stopped
}

// startMail opens the spool, starts delivery, and starts the listeners.
// Everything it starts stops when ctx ends; errc gets listener failures.
func startMail(ctx context.Context, m *mailFlags, d *data, src *keys.Source, log *slog.Logger, errc chan<- error) (*mail, error) {
	if m.maxConns < 1 || m.maxConnsPerIP < 1 || m.preAuthIdle <= 0 {
		return nil, usagef("--max-connections, --max-connections-per-ip and --preauth-idle-timeout must be positive")
	}
	qm := &queue.Metrics{}
	var spool mailQueue
	dopts := delivery.Options{SmartHost: m.smarthost, Username: m.smarthostUser, HeloName: m.hostname, Expiry: m.queueLifetime, Log: log, Metrics: qm}
	if d.pg != nil {
		// The queue every node shares: a message is delivered by whichever
		// node claims it first; a short lease hands a dead node's messages
		// on soon (the lease is renewed while an attempt runs). The data
		// directory holds only the node's own files (its certificate, the
		// relay's temporary files): make it on a new node.
		if m.queueLease < time.Second {
			return nil, usagef("--queue-lease must be at least 1s")
		}
		if err := d.dir.MakeRoot(); err != nil {
			return nil, err
		}
		spool = d.pg.Queue(postgres.QueueOptions{Metrics: qm, Log: log, Listen: true})
		dopts.Lease = m.queueLease
	} else {
		sp, err := queue.OpenSpool(d.dir.Spool(), queue.SpoolOptions{Log: log, Metrics: qm})
		if err != nil {
			return nil, err
		}
		spool = sp
	}
	// The relay's temporary files: emptied of what a killed serve left,
	// now that the spool's lock (on PostgreSQL: the node's own data
	// directory) says no other serve uses this directory.
	tmpDir, err := d.dir.CleanTmp()
	if err != nil {
		spool.Close()
		return nil, err
	}
	switch m.smarthostTLS {
	case "opportunistic":
	case "required":
		dopts.SmartHostTLS = delivery.TLSRequired
	case "implicit":
		dopts.SmartHostTLS = delivery.TLSImplicit
	case "none":
		dopts.SmartHostTLS = delivery.TLSDisabled
	default:
		spool.Close()
		return nil, usagef("--smarthost-tls %q: want opportunistic, required, implicit or none", m.smarthostTLS)
	}
	if m.smarthostPassFile != "" {
		pw, err := os.ReadFile(m.smarthostPassFile)
		if err != nil {
			spool.Close()
			return nil, err
		}
		dopts.Password = strings.TrimSpace(string(pw))
	}
	if m.mxResolver != "" {
		dopts.Resolver = &delivery.DNSResolver{Server: m.mxResolver}
	}
	out := &mail{spool: spool, metrics: &relay.Metrics{}, addrs: map[relay.Mode]string{}, delivered: make(chan struct{})}
	tlsConf, err := m.tlsConfig(d.dir)
	if err != nil {
		spool.Close()
		return nil, err
	}
	var counters relay.Counters
	if d.pg != nil {
		counters = d.pg.Counters() // limits hold for the cluster
	}
	out.relay, err = relay.New(relay.Options{
		Directory: d.db, Keys: src, Queue: relay.QueueOf(spool),
		TLS: tlsConf, AllowInsecureAuth: m.insecureAuth, Hostname: m.hostname,
		TempDir: tmpDir, Metrics: out.metrics, Log: log,
		SignatureLifetime: m.signatureLifetime,
		MessagesPerHour:   m.perHour, MessagesPerDay: m.perDay, Counters: counters,
		MaxConnections: m.maxConns, MaxConnectionsPerIP: m.maxConnsPerIP,
		PreAuthIdleTimeout: m.preAuthIdle,
	})
	if err != nil {
		spool.Close()
		return nil, err
	}
	// In a fixed order, so that a start that cannot listen always names
	// the same listener first.
	for _, l := range []struct {
		mode relay.Mode
		addr string
	}{{relay.ModeSubmission, m.submission}, {relay.ModeSubmissions, m.submissions}, {relay.ModeRelay, m.relayPort}} {
		mode, addr := l.mode, l.addr
		if addr == "" {
			continue
		}
		// No TCP keep-alive: the relay's idle and session timeouts end
		// dead sessions, and keep-alive costs four setsockopt calls on
		// every accepted connection (clients often send one message each).
		ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", addr)
		if err != nil {
			out.relay.Close()
			spool.Close()
			return nil, listenError(addr, mailListenFlag[mode], err)
		}
		out.addrs[mode] = ln.Addr().String()
		go func() {
			if err := out.relay.Serve(ln, mode); err != nil && !errors.Is(err, relay.ErrClosed) {
				errc <- err
			}
		}()
	}
	if err := out.startMilter(ctx, m, d, src, log, errc); err != nil {
		out.relay.Close()
		spool.Close()
		return nil, err
	}
	// Delivery starts last, so no failure above leaves it running on a
	// closed spool; stop ends it before the spool closes.
	dctx, cancel := context.WithCancel(ctx)
	out.stopDelivery = cancel
	go func() {
		defer close(out.delivered)
		if err := delivery.NewDeliverer(spool, dopts).Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("delivery_stopped", "err", err)
		}
	}()
	return out, nil
}

// milterWarnings routes go-milter's own warnings (a connection that broke
// off, a command it does not know) into serve's log, so that JSON logs stay
// JSON. The hook is a variable of the library, so it is set once per
// process, to the log of the first serve that runs a milter.
var milterWarnings sync.Once

// startMilter starts the milter listener, if one is configured: it signs
// with the same store, keys and rule as the relay, for an MTA that passes
// its own mail by.
func (out *mail) startMilter(ctx context.Context, m *mailFlags, d *data, src *keys.Source, log *slog.Logger, errc chan<- error) error {
	if m.milterAddr == "" {
		return nil
	}
	milterWarnings.Do(func() {
		mlog := log.With("listener", "milter")
		gomilter.LogWarning = func(format string, v ...any) {
			mlog.Warn("milter_protocol_warning", "detail", fmt.Sprintf(format, v...))
		}
	})
	out.milterStats = &milter.Metrics{}
	srv, err := milter.New(milter.Options{
		Directory: d.db, Keys: src, TrustedDaemon: m.milterTrusted, OnError: m.milterOnError,
		SignatureLifetime: m.signatureLifetime, Log: log.With("listener", "milter"), Metrics: out.milterStats,
	})
	if err != nil {
		return err
	}
	ln, err := milter.Listen(ctx, m.milterAddr, m.milterMode)
	if err != nil {
		return err
	}
	out.milter, out.milterAddr = srv, ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, milter.ErrClosed) {
			errc <- err
		}
	}()
	return nil
}

// mailListenFlag names the flag of each mail listener, for listenError.
var mailListenFlag = map[relay.Mode]string{
	relay.ModeSubmission:  "--listen-submission",
	relay.ModeSubmissions: "--listen-submissions",
	relay.ModeRelay:       "--listen-relay",
}

// highPortExample is the high loopback port listenError suggests for each
// listener flag.
var highPortExample = map[string]string{
	"--listen-submission":  "127.0.0.1:1587",
	"--listen-submissions": "127.0.0.1:1465",
	"--listen-relay":       "127.0.0.1:2525",
	"--listen-http":        "127.0.0.1:8080",
}

// errPrivilegedPort is a listener on a port below 1024 that this process
// may not bind: it is neither root nor holds CAP_NET_BIND_SERVICE.
var errPrivilegedPort = errors.New("ports below 1024 need root or CAP_NET_BIND_SERVICE")

// listenError says what to do when a listener cannot be opened. A port
// below 1024 refused for want of privilege (the README's first run as a
// normal user) gets one sentence naming both ways out: the shipped systemd
// unit, which grants CAP_NET_BIND_SERVICE, or a high port.
func listenError(addr, flagName string, err error) error {
	_, portStr, _ := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	if errors.Is(err, syscall.EACCES) && perr == nil && port > 0 && port < 1024 {
		return fmt.Errorf("cannot listen on %s (%s): %w: run dkimd through the shipped systemd unit (contrib/systemd/dkimd.service), or give a high port such as %s %s (\"\" turns a listener off)",
			addr, flagName, errPrivilegedPort, flagName, highPortExample[flagName])
	}
	return fmt.Errorf("listen %s (%s): %w", addr, flagName, err)
}

// stop ends the listeners (waiting for sessions up to ctx), then delivery,
// then closes the spool.
func (m *mail) stop(ctx context.Context) error {
	err := m.relay.Shutdown(ctx)
	if m.milter != nil {
		// A message in flight fails at the MTA, which retries it.
		if merr := m.milter.Shutdown(ctx); err == nil {
			err = merr
		}
	}
	if m.stopDelivery != nil {
		m.stopDelivery()
		select {
		case <-m.delivered:
		case <-ctx.Done():
			// Closing under a running delivery is safe for the spool's
			// files (each step is atomic); the message stays queued.
		}
	}
	if cerr := m.spool.Close(); err == nil {
		err = cerr
	}
	return err
}

func (m *mailFlags) tlsConfig(dir datadir.Layout) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case m.certFile != "" || m.keyFile != "":
		cert, err = tls.LoadX509KeyPair(m.certFile, m.keyFile)
	default:
		host := m.hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		cert, err = relay.SelfSignedCertificate(dir.RelayCert(), dir.RelayKey(), host, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
