package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/dataopen"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/metrics"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/relay"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
	"github.com/dkimd/dkimd/internal/web/panel"
)

// Data is an open data directory past the master-key gate
// (dataopen.Open): the database, the master key, the token when one is
// configured. On PostgreSQL (Data.PG) the queue, the message limits and the
// login throttle are the cluster's, and one node at a time runs the DNS
// monitor and the rotation. Run does not close it.
type Data = dataopen.Data

// Options are what Run serves. The zero value of each field is documented
// beside it; Data.Store and Log are required.
type Options struct {
	// Data is the open data directory.
	Data Data
	// ListenHTTP is the address of the control panel, JSON API, /metrics,
	// /healthz and /readyz; "" means an ephemeral port on all addresses
	// (as net.Listen).
	ListenHTTP string
	// Resolver is the DNS server HOST:PORT for record checks; "" means
	// the system's.
	Resolver string
	// CheckInterval is how often published keys are re-checked in DNS;
	// 0 means lifecycle's default.
	CheckInterval time.Duration
	// Failover switches, when an active key's record breaks, to a
	// published standby key of the domain.
	Failover bool
	// MaxUserNetwork is the widest network a domain admin may give a
	// user; the zero value means admin's default.
	MaxUserNetwork admin.NetworkLimit
	// OpenSSL signs RSA through libcrypto; nil signs in Go. Library names
	// it in the log ("" is logged as is).
	OpenSSL *keys.OpenSSL
	Library string
	// Settings are the lifecycle settings; the zero value means
	// lifecycle's defaults. Its queue and signature lifetimes are also
	// the mail side's.
	Settings lifecycle.Settings
	// Mail are the mail listeners, the queue and delivery.
	Mail MailOptions
	// DNS is the delegated zone and the rotation.
	DNS DNSOptions
	// Notice gets the one-time password of the first admin account on a
	// first start; nil means os.Stderr.
	Notice io.Writer
	// Log is where Run logs; its handler also gets the HTTP server's
	// own warnings.
	Log *slog.Logger
}

// ErrOption classifies an error of Run caused by its Options (a value out
// of range, settings that need each other): cli reports it as a usage
// error. Its message names the command-line flag.
var ErrOption = errors.New("invalid option")

type optionError struct{ msg string }

func (e optionError) Error() string        { return e.msg }
func (e optionError) Is(target error) bool { return target == ErrOption }

func optionf(format string, a ...any) error { return optionError{fmt.Sprintf(format, a...)} }

// readCacher is a store that can cache the per-message reads
// (sqlite.DB, postgres.DB).
type readCacher interface {
	CacheReads(ctx context.Context, log *slog.Logger)
}

// Run serves until ctx ends or a listener fails: the key source, the mail
// side (queue, delivery, SMTP listeners, milter), the lifecycle and admin
// services, the control socket on Data.Dir.ControlSocket(), the delegated
// zone, the DNS monitor and the rotation scheduler, and the HTTP side. It
// returns nil after a shutdown that ctx asked for.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil || o.Data.Store == nil {
		return errors.New("server: Options.Log and Options.Data.Store are required")
	}
	log, d := o.Log, &o.Data
	if o.Notice == nil {
		o.Notice = os.Stderr
	}
	pol, mf, dnsf := &o.Settings, &o.Mail, &o.DNS
	lib, library := o.OpenSSL, o.Library
	// The reads of users, domains and keys the relay and the milter make
	// for every message are cached until the store changes (SQLite: any
	// commit, by this process or another; PostgreSQL: any node's write).
	if c, ok := d.Store.(readCacher); ok {
		cctx, stopCache := context.WithCancel(ctx)
		defer stopCache()
		c.CacheReads(cctx, log)
	}
	log.Info("rsa_signing", "library", library)
	if d.Token != nil {
		// A token that is not there now does not stop serve: keys sealed
		// in the database still sign, mail for the token's keys gets 451
		// (a tempfail from the milter), and the token is tried again as
		// mail comes (a refused PIN is not, so as not to lock the token).
		if err := d.Token.Connect(); err != nil {
			log.Error("pkcs11_token_unavailable", "token", d.Token.Label(), "err", err,
				"detail", "keys in this token cannot sign; mail they should sign is refused with 451 until the token is back")
		} else {
			log.Info("pkcs11_token", "token", d.Token.Label())
		}
	}
	// Everything below is made whole, once, in the order it is needed: the
	// key source the relay signs with, the mail side, then the lifecycle
	// and admin services over the queue, the control socket and the
	// monitor.
	so := keys.SourceOptions{Sealed: d.Store, Master: d.Master, OpenSSL: lib, Log: log}
	if d.Token != nil {
		so.Token = d.Token
	}
	src, err := keys.NewSource(so)
	if err != nil {
		return err
	}
	errc := make(chan error, 4)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mf.queueLifetime, mf.signatureLifetime = pol.QueueLifetime, pol.SignatureLifetime
	if pol.SignatureLifetime <= pol.QueueLifetime {
		log.Warn("signature_lifetime_short", "signature_lifetime", pol.SignatureLifetime.String(), "queue_lifetime", pol.QueueLifetime.String(),
			"detail", "signatures may expire before the queue gives up delivering; make --signature-lifetime longer than --queue-lifetime")
	}
	// Every listener opens before anything is made, the first account
	// above all: a start that cannot listen must not print a one-time
	// password nobody can use.
	ln, err := net.Listen("tcp", o.ListenHTTP)
	if err != nil {
		return listenError(o.ListenHTTP, "--listen-http", err)
	}
	defer ln.Close()
	m, err := startMail(ctx, mf, d, src, log, errc)
	if err != nil {
		return err
	}
	dnsChk := lifecycle.DNS{Resolver: o.Resolver}
	a, lc, err := Services(d, Wiring{DNS: dnsChk, Settings: *pol, Queue: m.spool, Signers: src, MaxUserNetwork: o.MaxUserNetwork, Log: log})
	if err != nil {
		m.stop(ctx)
		return err
	}
	if err := reportNetworkOverlaps(ctx, a, log); err != nil {
		m.stop(ctx)
		return err
	}
	if err := bootstrapAdmin(ctx, o.Notice, a); err != nil {
		m.stop(ctx)
		return err
	}
	if err := ServeControl(ctx, d.Dir, a, log); err != nil {
		m.stop(ctx)
		return err
	}
	zoneSrv, err := startDNS(ctx, dnsf, d.Store, log)
	if err != nil {
		m.stop(ctx)
		return err
	}
	sched, err := startRotation(dnsf, lc, d.Store, dnsChk, zoneSrv, d.Store, log)
	if err != nil {
		m.stop(ctx)
		return err
	}
	mon, err := lifecycle.NewMonitor(lifecycle.MonitorOptions{
		Service: lc, Interval: o.CheckInterval, Failover: o.Failover, Log: log,
	})
	if err != nil {
		m.stop(ctx)
		return err
	}
	runMonitor := func(ctx context.Context) {
		if err := mon.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("monitor_stopped", "err", err)
		}
	}
	runRotation := func(ctx context.Context) {
		if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("rotation_stopped", "err", err)
		}
	}
	if d.PG != nil {
		// One node of the cluster checks DNS and activates keys: the one
		// that holds the leader lock; another takes over if it dies. The
		// same holds for scheduled rotation.
		go d.PG.Lead(ctx, "dns-monitor", leaderPoll, log, func(ctx context.Context) {
			go expireCounters(ctx, d.PG.Counters(), log)
			runMonitor(ctx)
		})
		go d.PG.Lead(ctx, "dns-rotation", leaderPoll, log, runRotation)
	} else {
		go runMonitor(ctx)
		go runRotation(ctx)
	}
	rd := &readiness{log: log, checks: []readyCheck{
		// The cheapest read every backend has; it needs no lock.
		{"store", func(ctx context.Context) error { _, err := d.Store.MasterKeyCheck(ctx); return err }},
		{"queue", func(ctx context.Context) error {
			if p, ok := m.spool.(interface{ Ping(context.Context) error }); ok {
				return p.Ping(ctx) // the shared queue: no count of a large table
			}
			_, err := m.spool.Stats(ctx) // the spool's: from memory
			return err
		}},
	}}
	srv := &http.Server{
		Handler:           httpHandler(a, metrics.Sources{Relay: m.metrics, Milter: m.milterStats, Queue: m.spool, Lifecycle: monitorWithRotation{mon, sched}}, rd, loginThrottle(d, log), log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "http", ln.Addr().String(), "submission", m.addrs[relay.ModeSubmission],
		"submissions", m.addrs[relay.ModeSubmissions], "relay", m.addrs[relay.ModeRelay], "milter", m.milterAddr, "data", d.Dir.Root)
	go func() { errc <- srv.Serve(ln) }()
	rd.listening.Store(true)
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting_down")
	rd.listening.Store(false)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
		serveErr = err
	}
	if err := m.stop(sctx); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}

// bootstrapAdmin makes the first admin account on first start, with a
// random password printed once, so the panel can be reached at all.
func bootstrapAdmin(ctx context.Context, w io.Writer, a *admin.Service) error {
	accounts, err := a.ListAccounts(ctx, admin.System())
	if err != nil || len(accounts) > 0 {
		return err
	}
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	password := base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := a.AddAccount(ctx, admin.System(), admin.NewAccountRequest{Name: "admin", Role: store.RoleAdmin, Password: password}); err != nil {
		return err
	}
	line := strings.Repeat("=", 72)
	_, err = fmt.Fprintf(w, "%s\nFirst start: log in as \"admin\" with the password %s\nIt is shown only now. Change it with: dkimd account password admin < newpassword\n%s\n", line, password, line)
	return err
}

// reportNetworkOverlaps warns, once a start, of each pair of users of
// different domains whose networks overlap: rows from before the network
// rules, or let through by an admin's override. Mail from such addresses
// may be taken for the wrong domain's, or refused. The operator reads the
// log, so it names both users and their domains.
func reportNetworkOverlaps(ctx context.Context, a *admin.Service, log *slog.Logger) error {
	overlaps, err := a.NetworkOverlaps(ctx, admin.System())
	if err != nil {
		return err
	}
	for _, o := range overlaps {
		log.Warn("user_networks_overlap",
			"user", o.A.User, "domain", o.A.Domain, "network", o.A.Network.String(),
			"other_user", o.B.User, "other_domain", o.B.Domain, "other_network", o.B.Network.String(),
			"detail", "users of different domains claim the same addresses; change or remove one")
	}
	return nil
}

// httpHandler routes the HTTP side of serve: the control panel, the JSON
// API, Prometheus metrics, and health checks for load balancers: /healthz
// (the process is up) and /readyz (it can take work; see readiness).
func httpHandler(a *admin.Service, ms metrics.Sources, ready http.Handler, throttle web.LoginThrottle, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	// One handler for the API and the panel, so that they share one login
	// throttle: alternating between them gives no extra guesses.
	mux.Handle("/", panel.NewSite(web.Options{Admin: a, Log: log, LoginThrottle: throttle}))
	mux.Handle("GET /metrics", metrics.Handler(ms))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	if ready != nil {
		mux.Handle("GET /readyz", ready)
	}
	return mux
}

// Wiring is what a caller adds to an open data directory's services; the
// zero value is what most admin commands need.
type Wiring struct {
	// DNS checks records; nil means none (activation only with force).
	DNS lifecycle.Checker
	// Settings are the lifecycle settings; the zero value is the defaults.
	Settings lifecycle.Settings
	// Queue is the mail queue, for the queue commands and serve; nil for
	// none.
	Queue queue.Queue
	// Signers is told to drop keys that stop signing (serve's key
	// source); nil for none.
	Signers lifecycle.Dropper
	// MaxUserNetwork is the widest network a domain admin may give a
	// user; the zero value is the defaults.
	MaxUserNetwork admin.NetworkLimit
	// Log receives one line per change; nil discards.
	Log *slog.Logger
}

// Services builds the lifecycle and admin services over d as w says: the
// one place serve and the admin commands wire them. Each is made whole,
// once; a command that needs another wiring builds another pair.
func Services(d *Data, w Wiring) (*admin.Service, *lifecycle.Service, error) {
	lo := lifecycle.ServiceOptions{
		Store: d.Store, Master: d.Master, DNS: w.DNS, Settings: w.Settings, Signers: w.Signers, Log: w.Log,
	}
	if d.Token != nil { // never a typed nil in the interface
		lo.Token = d.Token
	}
	lc, err := lifecycle.NewService(lo)
	if err != nil {
		return nil, nil, err
	}
	a, err := admin.New(admin.Options{Store: d.Store, Lifecycle: lc, Queue: w.Queue, MaxUserNetwork: w.MaxUserNetwork, Log: w.Log})
	return a, lc, err
}
