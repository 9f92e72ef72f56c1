package deliverytest

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how the sink answers a message.
type Mode int

const (
	// Accept answers 250 after the final dot.
	Accept Mode = iota
	// TempFail answers 451 4.3.0 after the final dot.
	TempFail
	// Shutdown answers 421 4.3.2 to MAIL FROM and closes the connection.
	Shutdown
	// PermFail answers 554 5.6.0 after the final dot.
	PermFail
	// Hang reads the whole message and never answers the final dot (until
	// the client hangs up or the sink closes).
	Hang
	// Drop reads the whole message and closes the connection without an
	// answer.
	Drop
)

// Received is one message the sink read to its final dot.
type Received struct {
	From string
	To   []string
	Data []byte
	// Mode is how the sink answered it: only Accept counts as delivered.
	Mode Mode
	// TLS says whether the connection was encrypted, User who logged in.
	TLS  bool
	User string
}

// SinkOptions configure a Sink. The zero value is a plaintext sink without
// AUTH that accepts everything.
type SinkOptions struct {
	// TLSConfig, when set, offers STARTTLS with it (or, with ImplicitTLS,
	// speaks TLS from the first byte).
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// Username and Password, when set, require AUTH PLAIN with them before
	// MAIL FROM.
	Username, Password string
	// Addr is the listen address; "" means 127.0.0.1:0.
	Addr string
}

// Sink is an SMTP server on loopback for tests.
type Sink struct {
	// Addr is the HOST:PORT it listens on.
	Addr string

	srv  *smtp.Server
	opts SinkOptions
	hang chan struct{}

	mu       sync.Mutex
	mode     Mode
	rcpt     func(to string) error
	msgs     []Received
	conns    int
	active   int
	peak     int
	open     map[*smtp.Conn]bool
	notify   chan struct{}
	closeOne sync.Once
}

// NewSink starts a sink and stops it when the test ends.
func NewSink(t testing.TB, opts SinkOptions) *Sink {
	t.Helper()
	s, err := StartSink(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartSink starts a sink; the caller must Close it.
func StartSink(opts SinkOptions) (*Sink, error) {
	s := &Sink{opts: opts, hang: make(chan struct{}), notify: make(chan struct{}, 1), open: make(map[*smtp.Conn]bool)}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "sink.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxRecipients = 1000
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	if opts.TLSConfig != nil && opts.ImplicitTLS {
		l, err = tls.Listen("tcp", addr, opts.TLSConfig)
	} else {
		srv.TLSConfig = opts.TLSConfig
		l, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	s.srv = srv
	s.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	return s, nil
}

// Close stops the sink and releases hung sessions.
func (s *Sink) Close() {
	s.closeOne.Do(func() {
		close(s.hang)
		_ = s.srv.Close()
	})
}

// SetMode sets how the following messages are answered.
func (s *Sink) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// SetRcpt sets a check run on each RCPT TO: a non-nil *smtp.SMTPError is
// the answer. nil accepts every recipient.
func (s *Sink) SetRcpt(f func(to string) error) {
	s.mu.Lock()
	s.rcpt = f
	s.mu.Unlock()
}

// Messages returns what the sink read so far, in order.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Delivered returns the messages the sink answered 250 to.
func (s *Sink) Delivered() []Received {
	var out []Received
	for _, m := range s.Messages() {
		if m.Mode == Accept {
			out = append(out, m)
		}
	}
	return out
}

// Conns counts the connections accepted.
func (s *Sink) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Peak is the largest number of connections open at once.
func (s *Sink) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Wait waits until the sink has read at least n messages, up to timeout,
// and returns them.
func (s *Sink) Wait(n int, timeout time.Duration) []Received {
	deadline := time.After(timeout)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.notify:
		case <-deadline:
			return s.Messages()
		}
	}
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.conns++
	s.active++
	s.peak = max(s.peak, s.active)
	s.open[c] = true
	s.mu.Unlock()
	return &session{s: s, c: c}, nil
}

// Open counts the connections open now.
func (s *Sink) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// DropConns closes every open connection without a word, as a server does
// when it times out an idle client or restarts.
func (s *Sink) DropConns() {
	s.mu.Lock()
	var cs []*smtp.Conn
	for c := range s.open {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

type session struct {
	s    *Sink
	c    *smtp.Conn
	user string
	from string
	to   []string
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && ss.user == "" {
		return errAuthRequired
	}
	ss.s.mu.Lock()
	mode := ss.s.mode
	ss.s.mu.Unlock()
	if mode == Shutdown {
		time.AfterFunc(50*time.Millisecond, func() { _ = ss.c.Close() })
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	f := ss.s.rcpt
	ss.s.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	mode := ss.s.mode
	_, tlsOn := ss.c.TLSConnectionState()
	ss.s.msgs = append(ss.s.msgs, Received{From: ss.from, To: append([]string(nil), ss.to...), Data: b, Mode: mode, TLS: tlsOn, User: ss.user})
	ss.s.mu.Unlock()
	select {
	case ss.s.notify <- struct{}{}:
	default:
	}
	switch mode {
	case TempFail:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case PermFail:
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"}
	case Hang:
		// Wait for the client to give up and close the connection (it
		// sends nothing while it waits for the reply), or for Close.
		gone := make(chan struct{})
		go func() {
			var b [1]byte
			_, _ = ss.c.Conn().Read(b[:])
			close(gone)
		}()
		select {
		case <-gone:
		case <-ss.s.hang:
		}
		return errors.New("sink closed")
	case Drop:
		_ = ss.c.Close()
		return errors.New("dropped")
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error {
	ss.s.mu.Lock()
	delete(ss.s.open, ss.c)
	ss.s.active--
	ss.s.mu.Unlock()
	return nil
}
