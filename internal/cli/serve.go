package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/metrics"
	"github.com/dkimd/dkimd/internal/relay"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/web"
	"github.com/dkimd/dkimd/internal/web/panel"
)

// serveOptions are the flags of "dkimd serve".
type serveOptions struct {
	listenHTTP    string
	resolver      string
	checkInterval time.Duration
	failover      bool
	logJSON       bool
	logLevel      slog.Level
}

func runServe(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("serve", e)
	df := addDataFlags(fs, e)
	var o serveOptions
	fs.StringVar(&o.listenHTTP, "listen-http", "127.0.0.1:8080", "address of the control panel, JSON API and /metrics")
	fs.StringVar(&o.resolver, "resolver", "", "DNS server HOST:PORT for record checks (default: the system's)")
	fs.DurationVar(&o.checkInterval, "check-interval", time.Hour, "how often published keys are re-checked in DNS (pending keys: every 5 minutes)")
	fs.BoolVar(&o.failover, "failover", false, "when an active key's record breaks, switch to a published standby key of the domain")
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
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	switch *logFormat {
	case "text", "json":
		o.logJSON = *logFormat == "json"
	default:
		return usagef("--log-format %q: want text or json", *logFormat)
	}
	hopts := &slog.HandlerOptions{Level: o.logLevel}
	var h slog.Handler = slog.NewTextHandler(e.Stderr, hopts)
	if o.logJSON {
		h = slog.NewJSONHandler(e.Stderr, hopts)
	}
	log := slog.New(h)

	d, err := openData(ctx, e, df, log)
	if err != nil {
		return err
	}
	defer d.Close()
	if d.pg != nil {
		// The relay's reads of users, domains and keys for every message
		// are cached until any node writes to the store.
		cctx, stopCache := context.WithCancel(ctx)
		defer stopCache()
		d.pg.CacheReads(cctx, log)
	}
	lib, library, err := openssl.load()
	if err != nil {
		return err
	}
	log.Info("rsa_signing", "library", library)
	if d.token != nil {
		// A token that is not there now does not stop serve: keys sealed
		// in the database still sign, mail for the token's keys gets 451
		// (a tempfail from the milter), and the token is tried again as
		// mail comes (a refused PIN is not, so as not to lock the token).
		if err := d.token.Connect(); err != nil {
			log.Error("pkcs11_token_unavailable", "token", d.token.Label(), "err", err,
				"detail", "keys in this token cannot sign; mail they should sign is refused with 451 until the token is back")
		} else {
			log.Info("pkcs11_token", "token", d.token.Label())
		}
	}
	// Everything below is made whole, once, in the order it is needed: the
	// key source the relay signs with, the mail side, then the lifecycle
	// and admin services over the queue, the control socket and the
	// monitor.
	so := keys.SourceOptions{Sealed: d.db, Master: d.master, OpenSSL: lib, Log: log}
	if d.token != nil {
		so.Token = d.token
	}
	src, err := keys.NewSource(so)
	if err != nil {
		return err
	}
	if err := reportNetworkOverlaps(ctx, d.admin, log); err != nil {
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
	ln, err := net.Listen("tcp", o.listenHTTP)
	if err != nil {
		return listenError(o.listenHTTP, "--listen-http", err)
	}
	defer ln.Close()
	m, err := startMail(ctx, mf, d, src, log, errc)
	if err != nil {
		return err
	}
	dnsChk := lifecycle.DNS{Resolver: o.resolver}
	a, lc, err := d.services(wiring{dns: dnsChk, settings: *pol, queue: m.spool, signers: src, maxUserNetwork: admin.NetworkLimit(maxNet), log: log})
	if err != nil {
		m.stop(ctx)
		return err
	}
	if err := bootstrapAdmin(ctx, e, a); err != nil {
		m.stop(ctx)
		return err
	}
	if err := serveControl(ctx, d.dir, a, log); err != nil {
		m.stop(ctx)
		return err
	}
	zoneSrv, err := startDNS(ctx, dnsf, d.db, log)
	if err != nil {
		m.stop(ctx)
		return err
	}
	sched, err := startRotation(ctx, dnsf, lc, d.db, dnsChk, zoneSrv, d.db, log)
	if err != nil {
		m.stop(ctx)
		return err
	}
	mon, err := lifecycle.NewMonitor(lifecycle.MonitorOptions{
		Service: lc, Interval: o.checkInterval, Failover: o.failover, Log: log,
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
	if d.pg != nil {
		// One node of the cluster checks DNS and activates keys: the one
		// that holds the leader lock; another takes over if it dies. The
		// same holds for scheduled rotation.
		go d.pg.Lead(ctx, "dns-monitor", leaderPoll, log, func(ctx context.Context) {
			go expireCounters(ctx, d.pg.Counters(), log)
			runMonitor(ctx)
		})
		go d.pg.Lead(ctx, "dns-rotation", leaderPoll, log, runRotation)
	} else {
		go runMonitor(ctx)
		go runRotation(ctx)
	}
	rd := &readiness{log: log, checks: []readyCheck{
		// The cheapest read every backend has; it needs no lock.
		{"store", func(ctx context.Context) error { _, err := d.db.MasterKeyCheck(ctx); return err }},
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
		ErrorLog:          slog.NewLogLogger(h, slog.LevelWarn),
	}
	log.Info("serving", "http", ln.Addr().String(), "submission", m.addrs[relay.ModeSubmission],
		"submissions", m.addrs[relay.ModeSubmissions], "relay", m.addrs[relay.ModeRelay], "milter", m.milterAddr, "data", d.dir.Root)
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
func bootstrapAdmin(ctx context.Context, e *Env, a *admin.Service) error {
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
	_, err = fmt.Fprintf(e.Stderr, "%s\nFirst start: log in as \"admin\" with the password %s\nIt is shown only now. Change it with: dkimd account password admin < newpassword\n%s\n", line, password, line)
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
