package relay

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/auth"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// Directory is what the relay needs from the store: the users and keys the
// signing rule reads, users by source address, keys by ID, and the signing
// domain's settings. A store.Store satisfies it.
type Directory interface {
	policy.Directory
	// UserByIP finds the IP-authenticated or re-authenticating user whose
	// networks hold addr (store.ErrNotFound if none).
	UserByIP(ctx context.Context, addr netip.Addr) (store.OutgoingUser, error)
	// GetKey finds a key by ID.
	GetKey(ctx context.Context, id int64) (store.Key, error)
	// GetDomain finds a domain, for its oversigning choice.
	GetDomain(ctx context.Context, name string) (store.Domain, error)
}

// KeySource opens a key's private half for signing; keys.Source does.
type KeySource interface {
	Signer(ctx context.Context, r keys.Ref) (crypto.Signer, error)
}

// Mode is what a listener is for.
type Mode int

// The listener modes.
const (
	// ModeSubmission is message submission (RFC 6409, port 587): plain
	// text until STARTTLS, then SMTP AUTH. Source addresses authorise
	// nobody here.
	ModeSubmission Mode = iota
	// ModeSubmissions is submission over implicit TLS (RFC 8314, port
	// 465): TLS from the first byte, then SMTP AUTH.
	ModeSubmissions
	// ModeRelay is for servers authorised by source address (port 2525
	// by default): IP-authenticated and re-authenticating users are found
	// by the connection's address; SMTP AUTH works too, after STARTTLS.
	ModeRelay
)

// String names the mode for logs.
func (m Mode) String() string {
	switch m {
	case ModeSubmission:
		return "submission"
	case ModeSubmissions:
		return "submissions"
	case ModeRelay:
		return "relay"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Defaults of the limits in Options.
const (
	DefaultMaxMessageBytes        = 25 << 20
	DefaultMaxHeaderBytes         = 256 << 10
	DefaultBufferMemoryBytes      = 256 << 10
	DefaultMaxRecipients          = 100
	DefaultMaxLineLength          = 2000
	DefaultIdleTimeout            = 5 * time.Minute
	DefaultPreAuthIdleTimeout     = 30 * time.Second
	DefaultSessionTimeout         = 30 * time.Minute
	DefaultMaxConnections         = 200
	DefaultMaxConnectionsPerIP    = 20
	DefaultMaxAuthFailuresPerIP   = 5
	DefaultMaxAuthFailuresPerUser = 10
	DefaultAuthFailureWindow      = 15 * time.Minute
	DefaultAuthFailureDelay       = time.Second
	DefaultMaxAuthFailureDelay    = 8 * time.Second
	DefaultMaxConcurrentAuth      = 4
	DefaultMaxTrackedAuth         = 10000
	DefaultMessagesPerHour        = 1000
	DefaultMessagesPerDay         = 10000
	DefaultSignatureLifetime      = 7 * 24 * time.Hour
)

// Options configure a Server. Directory, Keys and Queue are required; the
// zero value of every other field is the documented default.
type Options struct {
	// Directory gives users and keys.
	Directory Directory
	// Keys opens private keys for signing.
	Keys KeySource
	// Queue stores accepted messages durably.
	Queue Queue

	// TLS is the certificate configuration for STARTTLS and implicit TLS.
	// Nil means no STARTTLS is offered and ModeSubmissions cannot be
	// served; then AUTH is refused unless AllowInsecureAuth.
	TLS *tls.Config
	// AllowInsecureAuth allows AUTH without TLS. Only for tests on
	// loopback: passwords then cross the network in clear text.
	AllowInsecureAuth bool
	// Hostname is the name in the greeting and Received fields; empty
	// means os.Hostname, or "localhost" if that fails.
	Hostname string
	// TempDir holds the temporary file a message longer than
	// BufferMemoryBytes is written to while it is received and signed;
	// empty means os.TempDir(). The queue keeps the durable copy: what is
	// left here by a process that was killed was never acknowledged, and
	// dkimd serve empties its TempDir (the data directory's tmp/) at
	// start. It must not be a directory the queue manages.
	TempDir string
	// BufferMemoryBytes is how much of a message is held in memory while
	// it is received and signed; a longer message goes to a temporary file
	// in TempDir. Most mail fits, and then no file is created, written,
	// read back and removed. A connection holds at most this much for its
	// message, or its header if that is longer (a header is always held in
	// memory, up to MaxHeaderBytes), so messages take at most about
	// MaxConnections times the listeners times the larger of the two:
	// 50 MiB per listener with the defaults. The buffers are reused from message to message, and freed
	// by the garbage collector once idle. Zero means
	// DefaultBufferMemoryBytes (256 KiB); negative means every message goes
	// to a file.
	BufferMemoryBytes int

	// MaxMessageBytes bounds a message (advertised with SIZE, RFC 1870;
	// 552 5.3.4 beyond). Zero means DefaultMaxMessageBytes (25 MiB).
	MaxMessageBytes int64
	// MaxHeaderBytes bounds the header, which is held in memory to find
	// From and the identity header before signing starts (552 5.3.4
	// beyond). Zero means DefaultMaxHeaderBytes (256 KiB).
	MaxHeaderBytes int
	// MaxRecipients bounds RCPT per message (452 4.5.3 beyond; RFC 5321
	// §4.5.3.1.8 asks for at least 100). Zero means DefaultMaxRecipients.
	MaxRecipients int
	// MaxLineLength bounds a command or message line in bytes; a longer
	// one closes the connection. Zero means DefaultMaxLineLength (2000,
	// twice RFC 5321 §4.5.3.1.6).
	MaxLineLength int
	// IdleTimeout is how long a read may wait for the client, during
	// commands and DATA alike (RFC 5321 §4.5.3.2.7), once the client is
	// authorised. Zero means DefaultIdleTimeout (5 minutes).
	IdleTimeout time.Duration
	// PreAuthIdleTimeout is the idle timeout until the client is
	// authorised: until AUTH succeeds, or on a ModeRelay listener until
	// MAIL is accepted for a user found by the source address. A client
	// that has proved nothing cannot hold a place for long. It is never
	// longer than IdleTimeout. Zero means DefaultPreAuthIdleTimeout (30 s).
	PreAuthIdleTimeout time.Duration
	// SessionTimeout bounds a whole connection. Zero means
	// DefaultSessionTimeout (30 minutes).
	SessionTimeout time.Duration
	// MaxConnections bounds concurrent connections on each listener (each
	// Serve call has a budget of its own, so that unauthenticated clients
	// filling the submission port cannot lock IP-authorised servers out of
	// the relay port); one more is answered 421 4.7.0 and closed. Zero
	// means DefaultMaxConnections (200).
	MaxConnections int
	// MaxConnectionsPerIP bounds concurrent connections from one address
	// (one /64 for IPv6) on each listener, so that no single source takes
	// a listener's whole budget. Zero means DefaultMaxConnectionsPerIP
	// (20).
	MaxConnectionsPerIP int

	// MaxAuthFailuresPerIP is how many failed AUTH attempts an address (or
	// IPv6 /64) may make within AuthFailureWindow before every further
	// attempt is answered 421 4.7.0 and the connection closed. Zero means
	// DefaultMaxAuthFailuresPerIP (5).
	MaxAuthFailuresPerIP int
	// MaxAuthFailuresPerUser is the same per user name, whatever the
	// address (a slow spread-out guess). It is higher than the per-IP
	// bound so that one attacker cannot lock a user out as quickly. Zero
	// means DefaultMaxAuthFailuresPerUser (10).
	MaxAuthFailuresPerUser int
	// AuthFailureWindow is how long a failure counts. Zero means
	// DefaultAuthFailureWindow (15 minutes).
	AuthFailureWindow time.Duration
	// AuthFailureDelay is the wait before answering the first failure; it
	// doubles with each further failure up to MaxAuthFailureDelay. Zero
	// means DefaultAuthFailureDelay (1 s) and DefaultMaxAuthFailureDelay
	// (8 s).
	AuthFailureDelay, MaxAuthFailureDelay time.Duration
	// MaxConcurrentAuth bounds password checks running at once: each
	// argon2id check takes about 19 MiB. Zero means
	// DefaultMaxConcurrentAuth (4).
	MaxConcurrentAuth int
	// MaxTrackedAuth bounds the addresses and the user names whose
	// failures are remembered (each); when full, the entry seen longest
	// ago is forgotten. Zero means DefaultMaxTrackedAuth (10000).
	MaxTrackedAuth int

	// SignatureLifetime sets x= that long after t= on every signature, so
	// a signature cannot be replayed for ever; it must outlast the queue's
	// retry period. Zero means DefaultSignatureLifetime (7 days); negative
	// means no x=.
	SignatureLifetime time.Duration

	// MessagesPerHour and MessagesPerDay bound the messages one user may
	// send per clock hour and per UTC day on this node, or on the whole
	// cluster with Counters (451 4.7.1 beyond).
	// Zero means DefaultMessagesPerHour (1000) and DefaultMessagesPerDay
	// (10000); a negative value means no limit.
	MessagesPerHour, MessagesPerDay int

	// Counters, when set, keeps the message limits' and the AUTH failure
	// limits' counts there, shared by every node of a cluster; nil keeps
	// them in this process.
	Counters Counters

	// Metrics, if set, counts queued messages, signed and unsigned by
	// reason.
	Metrics *Metrics

	// Now is the clock for rate limits, Received dates and signatures;
	// nil means time.Now. Network deadlines always use the real time.
	Now func() time.Time
	// Log receives the server's log lines; nil discards them.
	Log *slog.Logger
}

// Server receives mail for dkimd. Create it with New, feed it listeners
// with Serve, and stop it with Shutdown or Close.
type Server struct {
	opts Options
	log  *slog.Logger
	// open holds every open connection, for Close.
	open     *openConns
	authFail authLimiter
	authSem  chan struct{}
	rate     messageLimiter
	// dummyHash is checked for unknown users so that their answer takes
	// as long as a known user's.
	dummyHash string
	nextConn  atomic.Uint64
	// bufio buffers and message buffers, reused (buffer.go).
	readers, writers, msgBufs sync.Pool

	mu        sync.Mutex
	servers   []*smtp.Server
	listeners []net.Listener
	closed    bool
}

// ErrNoTLS means a mode that needs a certificate was asked for without one.
var ErrNoTLS = errors.New("relay: no TLS configuration for implicit TLS")

// ErrClosed means the server was shut down.
var ErrClosed = errors.New("relay: server closed")

// New checks the options and fills in defaults.
func New(opts Options) (*Server, error) {
	o := opts
	if o.Directory == nil || o.Keys == nil || o.Queue == nil {
		return nil, errors.New("relay: Directory, Keys and Queue are required")
	}
	if o.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			o.Hostname = h
		} else {
			o.Hostname = "localhost"
		}
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	setDefault(&o.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&o.BufferMemoryBytes, DefaultBufferMemoryBytes)
	setDefault(&o.MaxRecipients, DefaultMaxRecipients)
	setDefault(&o.MaxLineLength, DefaultMaxLineLength)
	setDefault(&o.IdleTimeout, DefaultIdleTimeout)
	setDefault(&o.PreAuthIdleTimeout, DefaultPreAuthIdleTimeout)
	o.PreAuthIdleTimeout = min(o.PreAuthIdleTimeout, o.IdleTimeout)
	setDefault(&o.SessionTimeout, DefaultSessionTimeout)
	setDefault(&o.MaxConnections, DefaultMaxConnections)
	setDefault(&o.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	setDefault(&o.MaxAuthFailuresPerIP, DefaultMaxAuthFailuresPerIP)
	setDefault(&o.MaxAuthFailuresPerUser, DefaultMaxAuthFailuresPerUser)
	setDefault(&o.AuthFailureWindow, DefaultAuthFailureWindow)
	setDefault(&o.AuthFailureDelay, DefaultAuthFailureDelay)
	setDefault(&o.MaxAuthFailureDelay, DefaultMaxAuthFailureDelay)
	setDefault(&o.MaxConcurrentAuth, DefaultMaxConcurrentAuth)
	setDefault(&o.MaxTrackedAuth, DefaultMaxTrackedAuth)
	setDefault(&o.MessagesPerHour, DefaultMessagesPerHour)
	setDefault(&o.MessagesPerDay, DefaultMessagesPerDay)
	setDefault(&o.SignatureLifetime, DefaultSignatureLifetime)
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dummy, err := auth.HashPassword("dkimd relay: no such user")
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	s := &Server{
		opts:      o,
		log:       log,
		open:      &openConns{m: make(map[*conn]struct{})},
		authFail:  newAuthFailures(&o),
		authSem:   make(chan struct{}, o.MaxConcurrentAuth),
		rate:      newRateLimiter(o.MessagesPerHour, o.MessagesPerDay),
		dummyHash: dummy,
	}
	if o.Counters != nil {
		now := o.Now
		if now == nil {
			now = time.Now
		}
		s.rate = &sharedRate{c: o.Counters, perHour: o.MessagesPerHour, perDay: o.MessagesPerDay, log: log}
		s.authFail = &sharedAuth{c: o.Counters, maxIP: o.MaxAuthFailuresPerIP, maxUser: o.MaxAuthFailuresPerUser,
			window: o.AuthFailureWindow, now: now, log: log}
	}
	return s, nil
}

func setDefault[T int | int64 | time.Duration](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

// Serve accepts connections on ln for mode until the server is shut down
// or ln fails; it then returns nil after Shutdown or Close, the listener's
// error otherwise. Tests pass a listener on 127.0.0.1:0.
func (s *Server) Serve(ln net.Listener, mode Mode) error {
	if mode == ModeSubmissions && s.opts.TLS == nil {
		return ErrNoTLS
	}
	ss := smtp.NewServer(&backend{srv: s})
	ss.Domain = s.opts.Hostname
	ss.MaxMessageBytes = s.opts.MaxMessageBytes
	ss.MaxRecipients = s.opts.MaxRecipients
	ss.MaxLineLength = s.opts.MaxLineLength
	ss.AllowInsecureAuth = s.opts.AllowInsecureAuth
	// Read deadlines are set by conn.Read (idle and session timeouts);
	// writes get the idle timeout.
	ss.WriteTimeout = s.opts.IdleTimeout
	ss.ErrorLog = errorLog{s.log}
	ss.TLSConfig = s.opts.TLS

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.servers = append(s.servers, ss)
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()

	l := &listener{Listener: ln, srv: s, mode: mode,
		limits: newConnLimits(s.opts.MaxConnections, s.opts.MaxConnectionsPerIP)}
	var served net.Listener = l
	if mode == ModeSubmissions {
		served = tls.NewListener(l, s.opts.TLS)
	}
	s.log.Info("relay_listening", "addr", ln.Addr().String(), "mode", mode.String())
	err := ss.Serve(served)
	if err != nil && s.isClosed() {
		return nil
	}
	return err
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops accepting connections and waits for open ones to end (or
// ctx to be done, then closes them). A message being received when ctx ends
// gets no 250 and the client tries again.
func (s *Server) Shutdown(ctx context.Context) error {
	servers := s.stop()
	var errs []error
	for _, ss := range servers {
		// stop closed the listeners already: go-smtp's second close says so.
		if err := ss.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if ctx.Err() != nil {
		s.open.closeAll()
	}
	return errors.Join(errs...)
}

// Close stops accepting connections and closes every open one.
func (s *Server) Close() error {
	servers := s.stop()
	var errs []error
	for _, ss := range servers {
		if err := ss.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.open.closeAll()
	return errors.Join(errs...)
}

// stop marks the server closed and closes its listeners, also those a
// go-smtp server has not registered yet.
func (s *Server) stop() []*smtp.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, ln := range s.listeners {
		ln.Close() // a second close by go-smtp only returns an error
	}
	return s.servers
}

func (s *Server) now() time.Time { return s.opts.Now() }

// errorLog sends go-smtp's internal error lines (failed handshakes, broken
// connections) to the debug level: they are the peer's doing, not ours.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Debug("smtp_internal", "detail", fmt.Sprintf(format, v...))
}

func (e errorLog) Println(v ...any) { e.log.Debug("smtp_internal", "detail", fmt.Sprint(v...)) }
