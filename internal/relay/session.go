package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/mailaddr"
	"github.com/dkimd/dkimd/internal/store"
)

// backend makes a session per EHLO (go-smtp makes a new one after STARTTLS,
// so nothing said before TLS survives it, RFC 3207 §4.2).
type backend struct{ srv *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	tc := connOf(c.Conn())
	if tc == nil {
		b.srv.log.Error("relay_session_failed", "err", "connection not accepted by the relay listener")
		return nil, replyTemporary
	}
	_, isTLS := c.TLSConnectionState()
	return &session{srv: b.srv, c: tc, helo: c.Hostname(), tls: isTLS, log: tc.log}, nil
}

// session is one SMTP session: who authenticated and the transaction.
type session struct {
	srv  *Server
	c    *conn
	helo string
	tls  bool
	log  *slog.Logger

	// authUser is the user SMTP AUTH proved, if any.
	authUser *store.OutgoingUser

	// The transaction: the user as read again at MAIL, the envelope and
	// the logger with msg_id.
	user  *store.OutgoingUser
	from  string
	to    []string
	msgID string
	txLog *slog.Logger
}

var _ smtp.AuthSession = (*session)(nil)

// AuthMechanisms offers PLAIN and LOGIN; go-smtp advertises and accepts
// them only over TLS unless Options.AllowInsecureAuth.
func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth starts a mechanism.
func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(identity, name, password string) error {
		u, err := s.srv.authenticate(context.Background(), s.c, identity, name, password)
		if err != nil {
			return fail(s.log, "auth_failed", err)
		}
		s.authUser = &u
		s.c.authorised()
		s.log = s.log.With("user", u.Name)
		s.log.Info("auth_succeeded", "mechanism", mech, "tls", s.tls)
		return nil
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return saslServer{sasl.NewPlainServer(check)}, nil
	case sasl.Login:
		return saslServer{&loginServer{check: func(name, password string) error { return check("", name, password) }}}, nil
	}
	return nil, reply(errUnsupportedAuth)
}

// user finds who may send in this transaction, reading the user again so
// that a user disabled or changed since AUTH is treated as it is now.
func (s *session) currentUser(ctx context.Context) (*store.OutgoingUser, error) {
	dir := s.srv.opts.Directory
	if s.authUser != nil {
		u, err := dir.GetUser(ctx, s.authUser.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("%w: user %s was removed", errNotAuthorised, s.authUser.Name)
		case err != nil:
			return nil, fmt.Errorf("%w: user %s: %w", errLookup, s.authUser.Name, err)
		case !u.Enabled:
			return nil, fmt.Errorf("%w: user %s is disabled", errNotAuthorised, u.Name)
		case u.PasswordHash == "":
			return nil, fmt.Errorf("%w: user %s no longer has a password", errNotAuthorised, u.Name)
		}
		return &u, nil
	}
	if s.c.mode != ModeRelay {
		return nil, fmt.Errorf("%w: no AUTH on a submission port", errAuthRequired)
	}
	u, err := dir.UserByIP(ctx, s.c.ip)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: no user for address %s", errAuthRequired, s.c.ip)
	case errors.Is(err, store.ErrConflict):
		return nil, fmt.Errorf("%w: two users claim address %s: %w", errNotAuthorised, s.c.ip, err)
	case err != nil:
		return nil, fmt.Errorf("%w: user by address %s: %w", errLookup, s.c.ip, err)
	case u.Auth != store.AuthIP && u.Auth != store.AuthReauth:
		return nil, fmt.Errorf("%w: user %s is not authorised by address", errNotAuthorised, u.Name)
	case !u.Enabled:
		return nil, fmt.Errorf("%w: user %s (by address %s) is disabled", errNotAuthorised, u.Name, s.c.ip)
	}
	return &u, nil
}

// Mail starts a transaction: only for a user who may relay, within its rate
// limit, from an address of a domain it may send for.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	ctx := context.Background()
	s.resetTx()
	u, err := s.currentUser(ctx)
	if err != nil {
		return fail(s.log, "mail_refused", err)
	}
	log := s.log
	if s.authUser == nil {
		log = log.With("user", u.Name) // authorised by address
		s.c.authorised()
	}
	if err := s.srv.checkSpace(); err != nil {
		return fail(log, "mail_refused", err)
	}
	if !s.srv.rate.allow(ctx, u.Name, s.srv.now()) {
		return fail(log, "mail_refused", fmt.Errorf("%w: user %s", errRateLimited, u.Name))
	}
	var box mailaddr.Address
	if from != "" {
		box, err = checkAddress(from, u.AllowForeignFrom)
		if err != nil {
			return fail(log, "mail_refused", fmt.Errorf("MAIL FROM %q: %w", clip(from), err))
		}
		if _, lit := box.IPLiteral(); !u.AllowForeignFrom && (lit || !u.MaySignAs(box.Domain())) {
			return fail(log, "mail_refused", fmt.Errorf("%w: %s for user %s", errSenderDomain, box.DomainPart(), u.Name))
		}
	}
	if from != "" {
		// The envelope is kept with its domain canonical (as Rcpt does).
		from = box.String()
	}
	s.user, s.from, s.msgID = u, from, newID()
	s.txLog = log.With("msg_id", s.msgID)
	s.txLog.Debug("mail_from", "from", from)
	return nil
}

// Rcpt adds a recipient. Any domain is a destination for a user that may
// relay; routing tricks are not.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.user == nil {
		return fail(s.log, "rcpt_refused", fmt.Errorf("%w: RCPT without a transaction", errNotAuthorised))
	}
	box, err := checkAddress(to, s.user.AllowForeignFrom)
	if err != nil {
		return fail(s.txLog, "rcpt_refused", fmt.Errorf("RCPT TO %q: %w", clip(to), err))
	}
	// Relayed as checked: bob@Example.NET. goes on as bob@example.net, the
	// domain canonical as for MAIL FROM and the From field (one parser,
	// mailaddr).
	s.to = append(s.to, box.String())
	return nil
}

// Data receives, signs and queues the message.
func (s *session) Data(r io.Reader) error {
	if s.user == nil || len(s.to) == 0 {
		return fail(s.log, "data_refused", errNoValidRcpt)
	}
	id, err := s.receive(context.Background(), r)
	if err != nil {
		if errors.Is(err, smtp.ErrTooLongLine) {
			// The rest of the stream cannot be read in step: this reply is
			// the only one (go-smtp would otherwise answer the next
			// command read with a second 500).
			s.c.hangUp()
		}
		return fail(s.txLog, "message_refused", err)
	}
	// go-smtp sends the success reply it is given; this one names the
	// queue id, as MTAs do, for the client's logs.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK queued as " + id}
}

// Reset ends the transaction.
func (s *session) Reset() { s.resetTx() }

func (s *session) resetTx() {
	s.user, s.from, s.to, s.msgID, s.txLog = nil, "", nil, "", nil
}

// Logout ends the session.
func (s *session) Logout() error { return nil }
