package milter

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	gomilter "github.com/d--j/go-milter"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// Failure classes: the reason label of the tempfail and rejected counters.
const (
	failLookup    policy.Reason = "lookup_failed"
	failKey       policy.Reason = "key_unavailable"
	failSigner    policy.Reason = "signer_error"
	failMalformed policy.Reason = "malformed_header"
)

// errMessage marks a failure that is the message's: signing it again will
// not help.
var errMessage = errors.New("message cannot be signed")

// session is one MTA connection; messages on it come one after another.
type session struct {
	gomilter.NoOpMilter
	srv      *Server
	log      *slog.Logger
	connAddr string // from the connect event
	msg      message
}

// message is the state of the message in progress.
type message struct {
	// ctx is for the message's reads of the store: they see it as it was
	// at the first of them (store.OneCheck).
	ctx    context.Context
	sender Sender
	user   *store.OutgoingUser
	hdr    []byte
	hdrErr error
	froms  []string // the From field values, kept even when hdr is not
	dec    policy.Decision
	signer *dkim.Signer
	err    error // the first signing failure
}

// Connect keeps the client address, in case the MTA sends no
// {client_addr}.
func (s *session) Connect(_, family string, _ uint16, addr string, _ gomilter.Modifier) (*gomilter.Response, error) {
	s.connAddr = ""
	if family == "tcp4" || family == "tcp6" {
		s.connAddr = addr
	}
	return gomilter.RespContinue, nil
}

// MailFrom starts a message and identifies its sender. Mail from nobody
// dkimd knows is accepted here, so the MTA sends the milter nothing more
// of it (most of what reaches a milter on port 25 is inbound mail).
func (s *session) MailFrom(_, _ string, m gomilter.Modifier) (*gomilter.Response, error) {
	s.msg = message{ctx: store.OneCheck(context.Background())}
	snd := Sender{AuthName: m.Get(gomilter.MacroAuthAuthen), ClientAddr: m.Get(gomilter.MacroClientAddr), Daemon: m.Get(gomilter.MacroDaemonName)}
	if snd.ClientAddr == "" {
		snd.ClientAddr = s.connAddr
	}
	s.msg.sender = snd
	u, dec := Identify(s.msg.ctx, s.srv.opts.Directory, snd, s.srv.opts.TrustedDaemon)
	if u == nil {
		return s.final(m, dec), nil
	}
	s.msg.user = u
	// A re-authenticating server is never signed, and a disabled user not
	// by dkimd: both are passed on as the MTA decided, before their body.
	switch {
	case u.Auth == store.AuthReauth:
		return s.final(m, policy.Decision{Outcome: policy.OutcomeUnsigned, User: u.Name, Reason: policy.ReasonReauth, Message: policy.ReauthMessage}), nil
	case !u.Enabled:
		return s.final(m, policy.Decision{Outcome: policy.OutcomeUnsigned, User: u.Name, Reason: policy.ReasonUserDisabled,
			Message: fmt.Sprintf("user %s is disabled in dkimd: not signed", u.Name)}), nil
	}
	return gomilter.RespContinue, nil
}

// Header collects the header, byte for byte as the MTA has it: with
// SMFIP_HDR_LEADSPC the value keeps its leading space, and folded lines
// come with LF line ends, made CRLF again here.
func (s *session) Header(name, value string, _ gomilter.Modifier) (*gomilter.Response, error) {
	if s.msg.user == nil {
		return gomilter.RespContinue, nil
	}
	if strings.EqualFold(name, "From") && len(s.msg.froms) < 10 && len(value) <= s.srv.opts.MaxHeaderBytes {
		s.msg.froms = append(s.msg.froms, string(appendCRLF(nil, value)))
	}
	if s.msg.hdrErr != nil {
		return gomilter.RespContinue, nil
	}
	n := len(s.msg.hdr) + len(name) + 1 + len(value) + 2
	if n > s.srv.opts.MaxHeaderBytes {
		s.msg.hdrErr = fmt.Errorf("%w: %w: more than %d bytes", errMessage, dkim.ErrHeaderTooLarge, s.srv.opts.MaxHeaderBytes)
		s.msg.hdr = nil
		return gomilter.RespContinue, nil
	}
	s.msg.hdr = append(s.msg.hdr, name...)
	s.msg.hdr = append(s.msg.hdr, ':')
	s.msg.hdr = appendCRLF(s.msg.hdr, value)
	s.msg.hdr = append(s.msg.hdr, '\r', '\n')
	return gomilter.RespContinue, nil
}

// Headers decides, now that From is known: a message that is not to be
// signed is accepted here, before its body is sent.
func (s *session) Headers(m gomilter.Modifier) (*gomilter.Response, error) {
	if s.msg.user == nil {
		// Not ours (an MTA that ignored our answer to MAIL).
		return gomilter.RespAccept, nil
	}
	// The relay's decision (policy.Evaluate), so that the explainer's
	// verdict holds here too: what the relay refuses is rejected.
	dec := policy.Evaluate(s.msg.ctx, s.srv.opts.Directory, policy.Request{User: s.msg.user, From: s.msg.froms})
	s.msg.dec = dec
	switch dec.Outcome {
	case policy.OutcomeDeferred:
		return s.fail(m, failLookup, dec.Err), nil
	case policy.OutcomeRefused:
		return s.refuse(m, dec), nil
	}
	if !dec.Signs() {
		return s.final(m, dec), nil
	}
	// A header the signer cannot take fails only a message that was to be
	// signed; any other passes as it would without dkimd.
	if s.msg.hdrErr != nil {
		return s.fail(m, failMalformed, s.msg.hdrErr), nil
	}
	s.msg.hdr = append(s.msg.hdr, '\r', '\n')
	signer, class, err := s.newSigner(dec)
	if err != nil {
		return s.fail(m, class, err), nil
	}
	// The signer parses the header here: one that does not parse is the
	// message's fault (failMalformed).
	if _, err := signer.Write(s.msg.hdr); err != nil {
		return s.fail(m, signerClass(err), err), nil
	}
	s.msg.signer = signer
	s.msg.hdr = nil
	return gomilter.RespContinue, nil
}

// BodyChunk hashes the next piece of the body as it arrives; nothing of
// the body is kept. A bare LF goes to the signer as it is: body
// canonicalization reads it as the CRLF it stands for (RFC 6376 §3.4.3,
// §3.4.4; dkim's TestBodyCanonBareLF), the line end Postfix and Sendmail
// give it on the way out.
func (s *session) BodyChunk(chunk []byte, _ gomilter.Modifier) (*gomilter.Response, error) {
	if s.msg.signer != nil && s.msg.err == nil {
		if _, err := s.msg.signer.Write(chunk); err != nil {
			s.msg.err = err
		}
	}
	return gomilter.RespContinue, nil
}

// EndOfMessage makes the signatures and asks the MTA to put them on top
// of the header; either all of them or none.
func (s *session) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	msg := &s.msg
	if msg.signer == nil {
		// Headers answered already, or the MTA skipped it.
		return gomilter.RespAccept, nil
	}
	err := msg.err
	if err == nil {
		err = msg.signer.Close()
	}
	if err != nil {
		return s.fail(m, signerClass(err), err), nil
	}
	sigs := msg.signer.Signatures()
	// InsertHeader at 0 puts a field on top: the last first, so they end
	// up in the signer's order (RSA on top, RFC 8463 §1).
	for i := len(sigs) - 1; i >= 0; i-- {
		v := strings.TrimSuffix(strings.TrimPrefix(sigs[i], "DKIM-Signature:"), "\r\n")
		if m.Protocol()&gomilter.OptHeaderLeadingSpace == 0 {
			// The MTA adds the space after the colon itself.
			v = strings.TrimPrefix(v, " ")
		}
		// With SMFIP_HDR_LEADSPC the value carries its own leading
		// space, or the field would read "DKIM-Signature:v=1" (the bug
		// OpenARC had).
		if err := m.InsertHeader(0, "DKIM-Signature", v); err != nil {
			// The connection to the MTA broke; it fails the message.
			return nil, fmt.Errorf("milter: insert header: %w", err)
		}
	}
	s.done(m, ResultSigned, msg.dec.Reason, "milter_signed")
	return gomilter.RespAccept, nil
}

// Abort forgets the message in progress; the connection goes on.
func (s *session) Abort(_ gomilter.Modifier) error {
	s.msg = message{}
	return nil
}

// newSigner opens the keys the decision names, checking each once more
// against the user and the key row, as the relay does: a policy bug must
// never make a signature for another tenant's domain.
func (s *session) newSigner(dec policy.Decision) (*dkim.Signer, policy.Reason, error) {
	ctx := s.msg.ctx
	o := &s.srv.opts
	u := s.msg.user
	var ks []dkim.SignKey
	for _, sig := range dec.Sign {
		if !u.MaySignAs(sig.Domain) {
			return nil, failKey, fmt.Errorf("policy chose d=%s, which user %s may not sign as", sig.Domain, u.Name)
		}
		k, err := o.Directory.GetKey(ctx, sig.KeyID)
		if err != nil {
			return nil, failLookup, fmt.Errorf("key %d: %w", sig.KeyID, err)
		}
		if k.Domain != sig.Domain.String() || k.Selector != sig.Selector || k.State != store.KeyActive {
			return nil, failKey, fmt.Errorf("key %d is %s._domainkey.%s (%s), not the %s._domainkey.%s decided",
				k.ID, k.Selector, k.Domain, k.State, sig.Selector, sig.Domain)
		}
		var cs crypto.Signer
		if cs, err = o.Keys.Signer(ctx, k.Ref()); err != nil {
			return nil, failKey, fmt.Errorf("open key %s._domainkey.%s: %w", k.Selector, k.Domain, err)
		}
		ks = append(ks, dkim.SignKey{Domain: k.Domain, Selector: k.Selector, Signer: cs})
	}
	signer, err := dkim.NewSigner(&dkim.SignOptions{Keys: ks, Now: o.Now, MaxHeaderBytes: o.MaxHeaderBytes + 2, Expiration: max(o.SignatureLifetime, 0)})
	if err != nil {
		return nil, failSigner, err
	}
	return signer, "", nil
}

// signerClass tells the message's faults from ours.
func signerClass(err error) policy.Reason {
	if errors.Is(err, errMessage) || errors.Is(err, dkim.ErrMalformedHeader) || errors.Is(err, dkim.ErrFromCount) || errors.Is(err, dkim.ErrHeaderTooLarge) {
		return failMalformed
	}
	return failSigner
}

// final ends a message that is passed on unsigned.
func (s *session) final(m gomilter.Modifier, dec policy.Decision) *gomilter.Response {
	s.msg.dec = dec
	if dec.Reason == policy.ReasonLookupFailed {
		return s.fail(m, failLookup, dec.Err)
	}
	s.done(m, ResultUnsigned, dec.Reason, "milter_not_signed")
	return gomilter.RespAccept
}

// refuse rejects a message the decision refuses, with the relay's reply:
// not exactly one From is the message's fault (RFC 5322 §3.6), a From the
// user may not send as is not permitted.
func (s *session) refuse(m gomilter.Modifier, dec policy.Decision) *gomilter.Response {
	resp, _ := gomilter.RejectWithCodeAndReason(550, "5.7.1 Sender address domain not permitted")
	if dec.Reason == policy.ReasonFromCount {
		resp, _ = gomilter.RejectWithCodeAndReason(550, "5.6.0 Message must have exactly one From field")
	}
	s.done(m, ResultRejected, dec.Reason, "milter_refused")
	return resp
}

// fail answers a signature that was due and cannot be made: try later
// (our fault) or refuse (the message's), or pass it on unsigned if so
// configured. Never half signed.
func (s *session) fail(m gomilter.Modifier, class policy.Reason, err error) *gomilter.Response {
	var resp *gomilter.Response
	var result string
	switch {
	case s.srv.opts.OnError == OnErrorAccept:
		result, resp = ResultAcceptedOnError, gomilter.RespAccept
	case class == failMalformed:
		result = ResultRejected
		resp, _ = gomilter.RejectWithCodeAndReason(550, "5.6.0 message header cannot be signed")
	default:
		result = ResultTempfail
		resp, _ = gomilter.RejectWithCodeAndReason(451, "4.3.0 DKIM signing failed, try again later")
	}
	s.logMsg(m, slog.LevelWarn, "milter_signing_failed",
		slog.String("class", string(class)), slog.String("err", err.Error()), slog.String("result", result))
	s.srv.opts.Metrics.add(result, class)
	s.msg = message{}
	return resp
}

// done logs and counts a message's outcome, and forgets it.
func (s *session) done(m gomilter.Modifier, result string, reason policy.Reason, event string) {
	s.logMsg(m, slog.LevelInfo, event)
	s.srv.opts.Metrics.add(result, reason)
	s.msg = message{}
}

// logMsg logs an event of the message in progress: its queue ID, sender
// and decision, then attrs. The SASL login is a user name, logged as the
// relay logs names; never a password. (One record with every attribute
// rather than a logger made With them: the same line, without a copy of
// the handler per message.)
func (s *session) logMsg(m gomilter.Modifier, level slog.Level, event string, attrs ...slog.Attr) {
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	all := make([]slog.Attr, 0, 5+3)
	all = append(all, slog.String("queue_id", m.Get(gomilter.MacroQueueId)), slog.String("auth_user", s.msg.sender.AuthName),
		slog.String("client_addr", s.msg.sender.ClientAddr), slog.String("daemon", s.msg.sender.Daemon),
		slog.Any("decision", s.msg.dec))
	s.log.LogAttrs(ctx, level, event, append(all, attrs...)...)
}

// appendCRLF appends v with each LF not after a CR made CRLF.
func appendCRLF(dst []byte, v string) []byte {
	for {
		i := strings.IndexByte(v, '\n')
		if i < 0 {
			return append(dst, v...)
		}
		if i > 0 && v[i-1] == '\r' {
			dst = append(dst, v[:i+1]...)
		} else {
			dst = append(dst, v[:i]...)
			dst = append(dst, '\r', '\n')
		}
		v = v[i+1:]
	}
}
