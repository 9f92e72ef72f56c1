package delivery

import (
	"github.com/dkimd/dkimd/internal/queue"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLSMode says how a connection to the next hop is secured.
type TLSMode int

const (
	// TLSOpportunistic (the zero value) uses STARTTLS when the server
	// offers it and goes on in plaintext when it does not, or when the
	// handshake fails (then on a new connection), as RFC 3207 §4 allows.
	// Certificates are not verified: unauthenticated encryption is what
	// opportunistic TLS to MX hosts can offer (RFC 7435).
	TLSOpportunistic TLSMode = iota
	// TLSRequired fails the connection unless STARTTLS succeeds with a
	// certificate that verifies.
	TLSRequired
	// TLSImplicit speaks TLS from the first byte (port 465, RFC 8314).
	TLSImplicit
	// TLSDisabled never uses TLS.
	TLSDisabled
)

// String names the mode as in configuration files.
func (m TLSMode) String() string {
	switch m {
	case TLSOpportunistic:
		return "opportunistic"
	case TLSRequired:
		return "starttls"
	case TLSImplicit:
		return "implicit"
	case TLSDisabled:
		return "none"
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// hop is one server to try, with how to talk to it.
type hop struct {
	addr       string // IP:port or host:port
	serverName string // for SNI and certificate checks
	mode       TLSMode
	tlsConfig  *tls.Config
	auth       sasl.Client // nil: no AUTH
}

// class is how an answer counts for a recipient.
type class int

const (
	classOK   class = iota // 2xx
	classTemp              // 4xx, timeout, lost connection
	classPerm              // 5xx
)

// rcptResult is what one attempt did for one recipient.
type rcptResult struct {
	class  class
	reply  string
	remote string
}

// outcome is the result of one SMTP transaction attempt.
type outcome struct {
	// early is set when the attempt failed before MAIL FROM was accepted:
	// another host may be tried, and rcpts is nil.
	early error
	// corrupt is set when the stored body failed its checks; the final dot
	// was not sent.
	corrupt error
	rcpts   []rcptResult
}

// errEarly classes failures before the mail transaction.
var errEarly = errors.New("queue: connection failed")

// formatReply renders an SMTP error as "550 5.1.1 text".
func formatReply(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		msg := strings.ReplaceAll(se.Message, "\n", " ")
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
			return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], msg)
		}
		return fmt.Sprintf("%d %s", se.Code, msg)
	}
	return err.Error()
}

// classify maps an error from the SMTP client to a class: 5xx is
// permanent, everything else (4xx, timeouts, lost connections) temporary.
func classify(err error) class {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.Code < 600 {
		return classPerm
	}
	return classTemp
}

// isSMTPReply reports whether err is an answer from the server rather than
// a broken connection.
func isSMTPReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// deadlineConn sets a fresh deadline before every read and write, so every
// SMTP step (and every chunk of DATA) has a timeout, and ignores the
// deadlines the SMTP client sets itself.
type deadlineConn struct {
	net.Conn
	timeout atomic.Int64 // nanoseconds
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(time.Duration(c.timeout.Load()))); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(time.Duration(c.timeout.Load()))); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *deadlineConn) SetDeadline(time.Time) error      { return nil }
func (c *deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }

// greetedConn hands the SMTP client a greeting already consumed by the
// STARTTLS exchange, so it starts with EHLO on the secured connection
// (RFC 3207 §4.2: the client must send EHLO again after the handshake).
type greetedConn struct {
	net.Conn
	pre []byte
}

func (c *greetedConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// errNoStartTLS and errHandshake are the early failures that opportunistic
// TLS recovers from by going on in plaintext.
var (
	errNoStartTLS = errors.New("queue: STARTTLS not offered")
	errHandshake  = errors.New("queue: TLS handshake failed")
)

// dial connects to h and returns an SMTP session past the greeting and
// (when asked for) TLS and AUTH.
func (d *Deliverer) dial(ctx context.Context, h hop, mode TLSMode) (*cachedConn, error) {
	dialer := net.Dialer{Timeout: d.connectTimeout}
	raw, err := dialer.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEarly, err)
	}
	dc := &deadlineConn{Conn: raw}
	dc.timeout.Store(int64(d.commandTimeout))
	fail := func(err error) (*cachedConn, error) {
		_ = raw.Close() // the attempt failed already; nothing was sent
		return nil, err
	}
	var conn net.Conn = dc
	switch mode {
	case TLSImplicit:
		tc := tls.Client(dc, d.tlsConfig(h))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("%w: %w: %v", errEarly, errHandshake, err))
		}
		conn = tc
	case TLSOpportunistic, TLSRequired:
		tc, err := d.startTLS(ctx, dc, h, mode)
		if err != nil {
			return fail(err)
		}
		conn = tc
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = d.commandTimeout
	c.SubmissionTimeout = d.dataTimeout
	if err := c.Hello(d.helo); err != nil {
		return fail(fmt.Errorf("%w: %v", errEarly, err))
	}
	// NOOP (which every server must take, RFC 5321 §4.5.1) makes the
	// client read the greeting and say EHLO now, so their failures count
	// as connection failures (another MX may be tried), not as answers
	// for the recipients.
	if err := c.Noop(); err != nil {
		return fail(fmt.Errorf("%w: %s", errEarly, formatReply(err)))
	}
	if h.auth != nil {
		if !c.SupportsAuth(sasl.Plain) {
			return fail(fmt.Errorf("%w: AUTH PLAIN not offered", errEarly))
		}
		if err := c.Auth(h.auth); err != nil {
			return fail(fmt.Errorf("%w: AUTH: %s", errEarly, formatReply(err)))
		}
	}
	return &cachedConn{c: c, dc: dc, conn: conn}, nil
}

func (d *Deliverer) tlsConfig(h hop) *tls.Config {
	var cfg *tls.Config
	if h.tlsConfig != nil {
		cfg = h.tlsConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = h.serverName
	}
	if h.mode == TLSOpportunistic {
		cfg.InsecureSkipVerify = true //nolint:gosec // RFC 7435: opportunistic, unauthenticated
	}
	return cfg
}

// startTLS reads the greeting, says EHLO and, if STARTTLS is offered,
// upgrades the connection. It returns the connection the SMTP client is to
// use, with the greeting replayed.
func (d *Deliverer) startTLS(ctx context.Context, dc *deadlineConn, h hop, mode TLSMode) (net.Conn, error) {
	tp := textproto.NewConn(dc)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("%w: greeting: %v", errEarly, err)
	}
	offered := false
	if _, err := tp.Cmd("EHLO %s", d.helo); err != nil {
		return nil, fmt.Errorf("%w: %v", errEarly, err)
	}
	_, ext, err := tp.ReadResponse(250)
	var te *textproto.Error
	switch {
	case err == nil:
		for _, l := range strings.Split(ext, "\n")[1:] {
			if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
				offered = true
			}
		}
	case errors.As(err, &te) && mode == TLSOpportunistic:
		// No EHLO, so no STARTTLS: go on in plaintext with HELO.
	default:
		return nil, fmt.Errorf("%w: EHLO: %v", errEarly, err)
	}
	replay := []byte("220 " + h.serverName + " greeting replayed\r\n")
	if !offered {
		if mode == TLSRequired {
			return nil, fmt.Errorf("%w: %w", errEarly, errNoStartTLS)
		}
		return &greetedConn{Conn: dc, pre: replay}, nil
	}
	if _, err := tp.Cmd("STARTTLS"); err != nil {
		return nil, fmt.Errorf("%w: %v", errEarly, err)
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		if mode == TLSOpportunistic && errors.As(err, &te) {
			return nil, fmt.Errorf("%w: %w: %v", errEarly, errHandshake, err)
		}
		return nil, fmt.Errorf("%w: STARTTLS: %v", errEarly, err)
	}
	if tp.R.Buffered() > 0 {
		// Anything sent before the handshake could be injected
		// (CVE-2011-0411, the STARTTLS command injection).
		return nil, fmt.Errorf("%w: data before TLS handshake", errEarly)
	}
	tc := tls.Client(dc, d.tlsConfig(h))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w: %v", errEarly, errHandshake, err)
	}
	return &greetedConn{Conn: tc, pre: replay}, nil
}

// transact runs one mail transaction with h for the given recipients, on a
// cached connection to h when there is one and it still answers, otherwise
// on a new one.
//
// A cached connection gets no RSET when its last transaction ended with a
// reply to the final dot: that reply ends the transaction on the server
// (RFC 5321 §4.1.1.4), so MAIL may follow at once. A server that closed
// the idle session shows it at MAIL, and the message goes out on a new
// connection (see transactOn).
func (d *Deliverer) transact(ctx context.Context, h hop, m *queue.Message, rcpts []string) outcome {
	key := connKey(h)
	if cc := d.conns.get(key, time.Now()); cc != nil {
		if err := cc.reset(); err == nil {
			o, keep := d.transactOn(ctx, cc, h, m, rcpts, true)
			if o.early == nil {
				d.keepOrClose(ctx, key, cc, keep)
				return o
			}
			d.log.Debug("queue_cached_connection_failed", "msg_id", m.ID, "remote", h.addr, "err", o.early)
		}
		// The server closed the idle session (or said 421): nothing of
		// this transaction was sent, so a new connection may carry it.
		cc.close()
	}
	cc, err := d.dial(ctx, h, h.mode)
	if err != nil && h.mode == TLSOpportunistic && (errors.Is(err, errHandshake)) {
		// RFC 3207 §4: a client that does not insist on TLS may go on in
		// plaintext; it needs a new connection after a failed handshake.
		cc, err = d.dial(ctx, h, TLSDisabled)
	}
	if err != nil {
		return outcome{early: err}
	}
	o, keep := d.transactOn(ctx, cc, h, m, rcpts, false)
	d.keepOrClose(ctx, key, cc, keep)
	return o
}

// keepOrClose caches a connection whose session is in a clean state for the
// next transaction, and closes any other.
func (d *Deliverer) keepOrClose(ctx context.Context, key string, cc *cachedConn, keep bool) {
	if keep && ctx.Err() == nil {
		d.conns.put(key, cc, time.Now())
		return
	}
	cc.close()
}

// transactOn runs one mail transaction on an open session. keep reports
// whether the session can carry another transaction: the server replied to
// everything sent and did not say it is closing (421); cc.rset then says
// whether it needs RSET first. With reused set, a failure at MAIL that a
// new connection might not meet (a lost connection or 421) counts as
// early, so that the caller retries on a new connection.
func (d *Deliverer) transactOn(ctx context.Context, cc *cachedConn, h hop, m *queue.Message, rcpts []string, reused bool) (o outcome, keep bool) {
	c, dc := cc.c, cc.dc
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	remote := h.serverName
	all := func(cl class, reply string) []rcptResult {
		out := make([]rcptResult, len(rcpts))
		for i := range out {
			out[i] = rcptResult{class: cl, reply: reply, remote: remote}
		}
		return out
	}
	if err := c.Mail(m.Envelope.From, &smtp.MailOptions{Size: m.Size}); err != nil {
		if !isSMTPReply(err) || (reused && replyCode(err) == 421) {
			return outcome{early: fmt.Errorf("%w: MAIL: %v", errEarly, err)}, false
		}
		return outcome{rcpts: all(classify(err), formatReply(err))}, false
	}
	// The server now holds a transaction until the reply to the final dot
	// or RSET.
	cc.rset = true
	res := make([]rcptResult, len(rcpts))
	var accepted []int
	for i, r := range rcpts {
		err := c.Rcpt(r, nil)
		switch {
		case err == nil:
			accepted = append(accepted, i)
		case isSMTPReply(err):
			res[i] = rcptResult{class: classify(err), reply: formatReply(err), remote: remote}
		default:
			return outcome{rcpts: all(classTemp, "connection lost: "+err.Error())}, false
		}
	}
	setAccepted := func(cl class, reply string) {
		for _, i := range accepted {
			res[i] = rcptResult{class: cl, reply: reply, remote: remote}
		}
	}
	if len(accepted) == 0 {
		// Nothing to deliver, and no DATA: the transaction stays open on
		// the server, so the next one starts with RSET (cc.rset).
		return outcome{rcpts: res}, true
	}
	w, err := c.Data()
	if err != nil {
		if isSMTPReply(err) {
			setAccepted(classify(err), formatReply(err))
		} else {
			setAccepted(classTemp, "connection lost: "+err.Error())
		}
		return outcome{rcpts: res}, false
	}
	body, err := d.q.Body(ctx, m.ID)
	if err != nil {
		if errors.Is(err, queue.ErrCorrupt) {
			return outcome{corrupt: err}, false
		}
		setAccepted(classTemp, "spool: "+err.Error())
		return outcome{rcpts: res}, false
	}
	// The body goes straight onto the connection the client writes to
	// (the TLS one, when on), past the client's buffered writer, which is
	// empty once DATA got its 354; w then writes the last line and the
	// final dot and reads the reply (datawriter.go).
	dw := d.conns.writers.get(cc.conn, w)
	_, err = io.Copy(dw, body)
	if cerr := body.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %v", queue.ErrStorage, cerr)
	}
	if err == nil {
		err = dw.finish()
	}
	d.conns.writers.put(dw)
	if err != nil {
		// Leave without the final dot: closing the connection mid-DATA
		// makes the server drop what it got (RFC 5321 §4.1.1.4).
		if errors.Is(err, queue.ErrCorrupt) {
			return outcome{corrupt: err}, false
		}
		setAccepted(classTemp, "sending data: "+err.Error())
		return outcome{rcpts: res}, false
	}
	dc.timeout.Store(int64(d.dataTimeout))
	resp, err := w.CloseWithResponse()
	dc.timeout.Store(int64(d.commandTimeout))
	if isSMTPReply(err) || err == nil {
		// The reply to the final dot ends the transaction, whatever it
		// says (RFC 5321 §4.1.1.4).
		cc.rset = false
	}
	switch {
	case err == nil:
		setAccepted(classOK, "250 "+strings.ReplaceAll(resp.StatusText, "\n", " "))
		return outcome{rcpts: res}, true
	case isSMTPReply(err):
		setAccepted(classify(err), formatReply(err))
		return outcome{rcpts: res}, replyCode(err) != 421
	default:
		// Lost after the final dot: the server may or may not have the
		// message. Deferring risks a duplicate; bouncing would risk a loss.
		setAccepted(classTemp, "connection lost after data: "+err.Error())
		return outcome{rcpts: res}, false
	}
}

// replyCode is the code of an SMTP reply error, or 0.
func replyCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}
