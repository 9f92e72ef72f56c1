package milter

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// Directory is what the milter needs from the store: the users and keys
// the signing rule reads, users by address, and keys by ID. A store.Store
// satisfies it.
type Directory interface {
	Users
	policy.Directory
	// GetKey finds a key by ID.
	GetKey(ctx context.Context, id int64) (store.Key, error)
}

// KeySource opens a key's private half for signing.
type KeySource interface {
	Signer(ctx context.Context, r keys.Ref) (crypto.Signer, error)
}

// OnError is what the milter answers when a signature is due and cannot
// be made.
type OnError int

const (
	// OnErrorTempfail asks the MTA to try again later (4xx); a message
	// whose header cannot be signed at all is refused (5xx). The default.
	OnErrorTempfail OnError = iota
	// OnErrorAccept passes the message on unsigned.
	OnErrorAccept
)

// ParseOnError reads "tempfail" or "accept".
func ParseOnError(s string) (OnError, error) {
	switch s {
	case "tempfail", "":
		return OnErrorTempfail, nil
	case "accept":
		return OnErrorAccept, nil
	}
	return 0, fmt.Errorf("milter: on-error %q: want tempfail or accept", s)
}

// Defaults of the limits in Options.
const (
	DefaultMaxHeaderBytes    = 256 << 10
	DefaultSignatureLifetime = 7 * 24 * time.Hour
	// DefaultIdleTimeout is longer than the MTA keeps an idle milter
	// connection (Postfix: smtpd_timeout, 300 s, between SMTP commands).
	DefaultIdleTimeout = 30 * time.Minute
)

// Options configure a Server. Directory and Keys are required; the zero
// value of every other field is the documented default.
type Options struct {
	// Directory gives users and keys.
	Directory Directory
	// Keys opens private keys for signing.
	Keys KeySource
	// TrustedDaemon, when set, restricts signing to mail from the MTA
	// listener whose {daemon_name} it is (Postfix:
	// milter_macro_daemon_name, OpenDKIM's MTA setting); other mail is
	// passed on unsigned. Empty means every listener.
	TrustedDaemon string
	// OnError: the zero value is OnErrorTempfail.
	OnError OnError
	// SignatureLifetime is x= after t=; zero means
	// DefaultSignatureLifetime, negative no x=.
	SignatureLifetime time.Duration
	// MaxHeaderBytes bounds a message's header; zero means
	// DefaultMaxHeaderBytes. A milter packet may be this long plus 1 MiB
	// (a body chunk).
	MaxHeaderBytes int
	// IdleTimeout ends a connection the MTA sent nothing on for this
	// long; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Now is the clock for t=; nil means time.Now.
	Now func() time.Time
	// Log gets a line per decision and per failure; nil means
	// slog.Default().
	Log *slog.Logger
	// Metrics, if set, counts decisions.
	Metrics *Metrics
}

// ErrClosed is returned by Serve after Close or Shutdown.
var ErrClosed = errors.New("milter: server closed")

// Server is a milter server. Several MTAs (or MTA processes: Postfix opens
// one milter connection per SMTP session) may be connected at once.
type Server struct {
	opts Options
	log  *slog.Logger
	srv  *gomilter.Server
}

// What the milter asks of the MTA: protocol version 6, only the events it
// reads, no reply to events it never refuses, header values with their
// leading space, and the one action it takes.
const (
	wantVersion  = 6
	wantActions  = gomilter.OptAddHeader | gomilter.OptSetMacros
	wantProtocol = gomilter.OptNoHelo | gomilter.OptNoRcptTo | gomilter.OptNoData | gomilter.OptNoUnknown |
		gomilter.OptNoConnReply | gomilter.OptNoHeaderReply | gomilter.OptNoBodyReply |
		gomilter.OptHeaderLeadingSpace
	// mustProtocol are the bits without which the signature could be
	// wrong: header bytes exactly as the MTA has them.
	mustProtocol = gomilter.OptHeaderLeadingSpace
)

// New checks the options and returns a Server ready to Serve.
func New(o Options) (*Server, error) {
	if o.Directory == nil || o.Keys == nil {
		return nil, errors.New("milter: Directory and Keys are required")
	}
	if o.OnError != OnErrorTempfail && o.OnError != OnErrorAccept {
		return nil, fmt.Errorf("milter: unknown OnError %d", o.OnError)
	}
	if o.SignatureLifetime == 0 {
		o.SignatureLifetime = DefaultSignatureLifetime
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{opts: o, log: o.Log}
	s.srv = gomilter.NewServer(
		gomilter.WithDynamicMilter(s.newSession),
		gomilter.WithActions(wantActions),
		gomilter.WithProtocols(wantProtocol),
		gomilter.WithNegotiationCallback(s.negotiate),
		// Macros requested per stage (SMFIF_SETSYMLIST); Postfix and
		// Sendmail then send these, whatever their own lists say. The
		// listener and client address come once per connection and must
		// last for every message on it (go-milter's mailfilter layer lost
		// them from the second message on before v0.10.2, its bug #39;
		// the low-level server used here keeps them by stage).
		gomilter.WithMacroRequest(gomilter.StageConnect, []string{gomilter.MacroDaemonName, gomilter.MacroClientAddr}),
		gomilter.WithMacroRequest(gomilter.StageMail, []string{gomilter.MacroAuthAuthen, gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOH, []string{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []string{gomilter.MacroQueueId}),
		gomilter.WithReadTimeout(o.IdleTimeout),
	)
	return s, nil
}

// ErrNegotiation is an MTA that cannot give what signing needs.
var ErrNegotiation = errors.New("milter: negotiation failed")

// negotiate settles on protocol version 6 and on what both sides have of
// what the milter wants; without header values as the MTA has them or the
// right to add a header there is no point going on.
func (s *Server) negotiate(mtaVersion, _ uint32, mtaActions, _ gomilter.OptAction, mtaProtocol, _ gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	err := func() error {
		if mtaVersion < wantVersion {
			return fmt.Errorf("%w: the MTA speaks milter protocol %d, dkimd needs %d (Postfix 2.6 or later, Sendmail 8.14 or later)", ErrNegotiation, mtaVersion, wantVersion)
		}
		if mtaActions&gomilter.OptAddHeader == 0 {
			return fmt.Errorf("%w: the MTA does not let milters add header fields", ErrNegotiation)
		}
		if mtaProtocol&mustProtocol != mustProtocol {
			return fmt.Errorf("%w: the MTA cannot pass header values with their leading space (SMFIP_HDR_LEADSPC)", ErrNegotiation)
		}
		return nil
	}()
	if err != nil {
		s.log.Error("milter_negotiation_failed", "err", err.Error())
		return 0, 0, 0, 0, err
	}
	return wantVersion, wantActions & mtaActions, wantProtocol & mtaProtocol, offered, nil
}

func (s *Server) newSession(uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize) gomilter.Milter {
	return &session{srv: s, log: s.log}
}

// Serve accepts MTA connections on ln until Close or Shutdown, then
// returns ErrClosed.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(&guardListener{Listener: ln, max: s.opts.MaxHeaderBytes + 1<<20 + 64, log: s.log})
	if err == nil || errors.Is(err, gomilter.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Shutdown stops accepting connections and waits, up to ctx, for the MTAs
// to close theirs (between messages); then it closes them. A message in
// flight then fails at the MTA, which retries it (Postfix's
// milter_default_action = tempfail).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

// Listen opens a milter socket in the notation Postfix and Sendmail use:
// "unix:/path" (also "local:/path") or "inet:HOST:PORT" (also
// "inet:PORT@HOST", Sendmail's form, and "inet6:"). A UNIX socket gets
// mode (0 means 0660: the MTA's user must be in dkimd's group; chmod a
// wider mode only if every local user may have mail signed); a stale
// socket left by a crash is replaced, any other file is not.
func Listen(ctx context.Context, addr string, mode os.FileMode) (net.Listener, error) {
	kind, rest, ok := strings.Cut(addr, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("milter: listen %q: want unix:/path or inet:HOST:PORT", addr)
	}
	switch strings.ToLower(kind) {
	case "unix", "local":
		if fi, err := os.Lstat(rest); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("milter: listen %q: %s exists and is not a socket", addr, rest)
			}
			if err := os.Remove(rest); err != nil {
				return nil, fmt.Errorf("milter: listen %q: %w", addr, err)
			}
		}
		ln, err := (&net.ListenConfig{}).Listen(ctx, "unix", rest)
		if err != nil {
			return nil, fmt.Errorf("milter: listen %q: %w", addr, err)
		}
		if mode == 0 {
			mode = 0o660
		}
		if err := os.Chmod(rest, mode); err != nil {
			ln.Close()
			return nil, fmt.Errorf("milter: listen %q: %w", addr, err)
		}
		return ln, nil
	case "inet", "inet6":
		hostport := rest
		if port, host, ok := strings.Cut(rest, "@"); ok {
			hostport = net.JoinHostPort(host, port)
		}
		network := "tcp"
		if strings.EqualFold(kind, "inet6") {
			network = "tcp6"
		}
		ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, network, hostport)
		if err != nil {
			return nil, fmt.Errorf("milter: listen %q: %w", addr, err)
		}
		return ln, nil
	}
	return nil, fmt.Errorf("milter: listen %q: unknown kind %q (want unix or inet)", addr, kind)
}
