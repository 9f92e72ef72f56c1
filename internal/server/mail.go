package server

import (
	"context"
	"crypto/tls"
	"errors"
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

// MailOptions are serve's settings for receiving and delivering mail.
// The zero value turns every listener off and delivers to each recipient
// domain's MX with opportunistic TLS, without limits on messages; it is
// not valid as it stands: MaxConnections, MaxConnectionsPerIP and
// PreAuthIdleTimeout must be positive (cli gives the relay's defaults).
type MailOptions struct {
	// Submission, Submissions and Relay are the addresses of the SMTP
	// listeners (submission with STARTTLS, implicit TLS, and the relay
	// for IP-authenticated servers); "" turns one off.
	Submission, Submissions, Relay string
	// Hostname is the name in the SMTP greeting, Received fields and the
	// self-signed certificate; "" means the host name.
	Hostname string
	// CertFile and KeyFile are the TLS certificate chain and key (PEM);
	// both "" means a self-signed certificate made in the data directory.
	CertFile, KeyFile string
	// SmartHost is HOST:PORT to deliver everything through; "" delivers
	// to each recipient domain's MX. SmartHostTLS is opportunistic ("" is
	// the same), required, implicit or none.
	SmartHost, SmartHostTLS string
	// SmartHostUser and SmartHostPasswordFile are the AUTH PLAIN login
	// at the smart host ("" for none).
	SmartHostUser, SmartHostPasswordFile string
	// MXResolver is the DNS server HOST:PORT for MX lookups; "" means
	// /etc/resolv.conf.
	MXResolver string
	// AllowInsecureAuth allows AUTH without TLS (tests on loopback).
	AllowInsecureAuth bool
	// MessagesPerHour and MessagesPerDay limit one outgoing user, as in
	// relay.Options (-1: no limit).
	MessagesPerHour, MessagesPerDay int
	// MaxConnections and MaxConnectionsPerIP bound each mail listener's
	// connections; both must be positive.
	MaxConnections, MaxConnectionsPerIP int
	// PreAuthIdleTimeout is the idle timeout until AUTH succeeds; it must
	// be positive.
	PreAuthIdleTimeout time.Duration
	// QueueLease is, on PostgreSQL, how long a node holds a message it is
	// delivering without renewing; at least a second there, unused on
	// SQLite.
	QueueLease time.Duration
	// queueLifetime (how long a message is retried before it bounces) and
	// signatureLifetime (x=) come from Options.Settings.
	queueLifetime, signatureLifetime time.Duration
	// MilterAddr is the milter socket, unix:/path or inet:HOST:PORT; ""
	// turns the milter off. MilterSocketMode is a unix socket's mode (0
	// means 0660). MilterTrustedDaemon signs only mail from the MTA
	// listener of that {daemon_name} ("" means every listener).
	// MilterOnError is what happens when a signature is due and cannot
	// be made (the zero value: tempfail).
	MilterAddr, MilterTrustedDaemon string
	MilterSocketMode                os.FileMode
	MilterOnError                   milter.OnError
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
func startMail(ctx context.Context, m *MailOptions, d *Data, src *keys.Source, log *slog.Logger, errc chan<- error) (*mail, error) {
	if m.MaxConnections < 1 || m.MaxConnectionsPerIP < 1 || m.PreAuthIdleTimeout <= 0 {
		return nil, optionf("--max-connections, --max-connections-per-ip and --preauth-idle-timeout must be positive")
	}
	qm := &queue.Metrics{}
	var spool mailQueue
	dopts := delivery.Options{SmartHost: m.SmartHost, Username: m.SmartHostUser, HeloName: m.Hostname, Expiry: m.queueLifetime, Log: log, Metrics: qm}
	if d.PG != nil {
		// The queue every node shares: a message is delivered by whichever
		// node claims it first; a short lease hands a dead node's messages
		// on soon (the lease is renewed while an attempt runs). The data
		// directory holds only the node's own files (its certificate, the
		// relay's temporary files): make it on a new node.
		if m.QueueLease < time.Second {
			return nil, optionf("--queue-lease must be at least 1s")
		}
		if err := d.Dir.MakeRoot(); err != nil {
			return nil, err
		}
		spool = d.PG.Queue(postgres.QueueOptions{Metrics: qm, Log: log, Listen: true})
		dopts.Lease = m.QueueLease
	} else {
		sp, err := queue.OpenSpool(d.Dir.Spool(), queue.SpoolOptions{Log: log, Metrics: qm})
		if err != nil {
			return nil, err
		}
		spool = sp
	}
	// The relay's temporary files: emptied of what a killed serve left,
	// now that the spool's lock (on PostgreSQL: the node's own data
	// directory) says no other serve uses this directory.
	tmpDir, err := d.Dir.CleanTmp()
	if err != nil {
		spool.Close()
		return nil, err
	}
	switch m.SmartHostTLS {
	case "", "opportunistic":
	case "required":
		dopts.SmartHostTLS = delivery.TLSRequired
	case "implicit":
		dopts.SmartHostTLS = delivery.TLSImplicit
	case "none":
		dopts.SmartHostTLS = delivery.TLSDisabled
	default:
		spool.Close()
		return nil, optionf("--smarthost-tls %q: want opportunistic, required, implicit or none", m.SmartHostTLS)
	}
	if m.SmartHostPasswordFile != "" {
		pw, err := os.ReadFile(m.SmartHostPasswordFile)
		if err != nil {
			spool.Close()
			return nil, err
		}
		dopts.Password = strings.TrimSpace(string(pw))
	}
	if m.MXResolver != "" {
		dopts.Resolver = &delivery.DNSResolver{Server: m.MXResolver}
	}
	out := &mail{spool: spool, metrics: &relay.Metrics{}, addrs: map[relay.Mode]string{}, delivered: make(chan struct{})}
	tlsConf, err := m.tlsConfig(d.Dir)
	if err != nil {
		spool.Close()
		return nil, err
	}
	var counters relay.Counters
	if d.PG != nil {
		counters = d.PG.Counters() // limits hold for the cluster
	}
	out.relay, err = relay.New(relay.Options{
		Directory: d.Store, Keys: src, Queue: relay.QueueOf(spool),
		TLS: tlsConf, AllowInsecureAuth: m.AllowInsecureAuth, Hostname: m.Hostname,
		TempDir: tmpDir, Metrics: out.metrics, Log: log,
		SignatureLifetime: m.signatureLifetime,
		MessagesPerHour:   m.MessagesPerHour, MessagesPerDay: m.MessagesPerDay, Counters: counters,
		MaxConnections: m.MaxConnections, MaxConnectionsPerIP: m.MaxConnectionsPerIP,
		PreAuthIdleTimeout: m.PreAuthIdleTimeout,
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
	}{{relay.ModeSubmission, m.Submission}, {relay.ModeSubmissions, m.Submissions}, {relay.ModeRelay, m.Relay}} {
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
func (out *mail) startMilter(ctx context.Context, m *MailOptions, d *Data, src *keys.Source, log *slog.Logger, errc chan<- error) error {
	if m.MilterAddr == "" {
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
		Directory: d.Store, Keys: src, TrustedDaemon: m.MilterTrustedDaemon, OnError: m.MilterOnError,
		SignatureLifetime: m.signatureLifetime, Log: log.With("listener", "milter"), Metrics: out.milterStats,
	})
	if err != nil {
		return err
	}
	mode := m.MilterSocketMode
	if mode == 0 {
		mode = 0o660
	}
	ln, err := milter.Listen(ctx, m.MilterAddr, mode)
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

func (m *MailOptions) tlsConfig(dir datadir.Layout) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case m.CertFile != "" || m.KeyFile != "":
		cert, err = tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
	default:
		host := m.Hostname
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
