package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/policy"
	"github.com/dkimd/dkimd/internal/store"
)

// maxIdentityLen bounds the identity a re-authenticating server names.
const maxIdentityLen = 255

// receive reads the message, checks its header against the user, signs it
// as the policy decides and hands it to the queue. The header is held in
// memory (bounded); the body streams to a message buffer (memory, or a temporary
// file if it is long) and the signer.
func (s *session) receive(ctx context.Context, r io.Reader) (string, error) {
	// The message's reads of the store (keys, the domain) see it as it was
	// at the first of them.
	ctx = store.OneCheck(ctx)
	o := &s.srv.opts
	u := s.user
	br := s.srv.getReader(&lineGuard{r: r})
	defer s.srv.putReader(br)
	sp := s.srv.getBuffer()
	defer func() {
		if err := sp.close(); err != nil {
			s.txLog.Warn("buffer_file_not_removed", "err", err.Error())
		}
		s.srv.putBuffer(sp)
	}()
	hdr, err := sp.readHeader(br, o.MaxHeaderBytes)
	if err != nil {
		return "", err
	}
	fields, err := dkim.ParseHeader(hdr)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errMalformed, err)
	}
	// One decision for every front end (policy.Evaluate): the explainer
	// gives the same verdict for the same user and From.
	dec := policy.Evaluate(ctx, o.Directory, policy.Request{User: u, From: fields.Values("From")})
	if dec.Refused() {
		s.txLog = s.txLog.With("decision", dec)
		return "", refusal(dec)
	}
	var identity string
	if u.Auth == store.AuthReauth {
		if identity, err = readIdentity(fields, u.EffectiveIdentityHeader()); err != nil {
			return "", err
		}
	}
	// The decision goes with every later line of the transaction: the
	// message_queued line, or the refusal.
	s.txLog = s.txLog.With("decision", dec, "identity", identity)
	if dec.Outcome == policy.OutcomeDeferred {
		return "", fmt.Errorf("%w: policy: %w", errLookup, dec.Err)
	}
	var signer *dkim.Signer
	if dec.Signs() {
		if signer, err = s.newSigner(ctx, dec); err != nil {
			return "", err
		}
	}

	// The header is in the buffer already, the signer has yet to see it.
	if err := sp.hold(); err != nil {
		return "", fmt.Errorf("%w: %w", errBuffer, err)
	}
	var w io.Writer = &tagWriter{w: sp, tag: errBuffer}
	if signer != nil {
		sw := &tagWriter{w: signer, tag: errSigning}
		if _, err := sw.Write(hdr); err != nil {
			return "", err
		}
		w = io.MultiWriter(w, sw)
	}
	// The client's errors (bare line ends, size limit) come back as the
	// reader gave them, ours tagged by tagWriter.
	if _, err := br.WriteTo(w); err != nil {
		return "", err
	}
	if err := sp.flush(); err != nil {
		return "", fmt.Errorf("%w: %w", errBuffer, err)
	}
	var prefix strings.Builder
	prefix.WriteString(s.received())
	if signer != nil {
		if err := signer.Close(); err != nil {
			return "", signError(err)
		}
		for _, sig := range signer.Signatures() {
			prefix.WriteString(sig)
		}
	}
	msg, err := sp.reader()
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBuffer, err)
	}
	tx := Transaction{From: s.from, To: s.to, User: u.Name, Identity: identity,
		ClientAddr: s.c.ip.String(), MsgID: s.msgID, Decision: dec}
	body := io.MultiReader(strings.NewReader(prefix.String()), msg)
	id, err := o.Queue.Enqueue(ctx, tx, body)
	if errors.Is(err, ErrRefused) {
		return "", fmt.Errorf("%w: %w", errQueueRefused, err)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", errQueue, err)
	}
	s.srv.rate.sent(ctx, u.Name, s.srv.now())
	o.Metrics.observe(dec)
	s.txLog.Info("message_queued", "queue_id", id, "from", s.from, "rcpts", len(s.to), "signed", dec.Signs())
	return id, nil
}

// refusal gives the failure class of a refused decision: the reply the
// relay gave for it before the decision moved into policy.Evaluate.
func refusal(dec policy.Decision) error {
	switch dec.Reason {
	case policy.ReasonFromCount:
		return fmt.Errorf("%w: %s", errMalformed, dec.Message)
	case policy.ReasonFromNotPermitted:
		return fmt.Errorf("%w: %s", errFromDomain, dec.Message)
	}
	return fmt.Errorf("%w: %s (%s)", errNotAuthorised, dec.Message, dec.Reason)
}

// newSigner opens the keys the decision names. Every signature is checked
// once more against the user and the key row, so that a policy bug can
// never make a signature for another tenant's domain: better 451 than that.
func (s *session) newSigner(ctx context.Context, dec policy.Decision) (*dkim.Signer, error) {
	o := &s.srv.opts
	var ks []dkim.SignKey
	for _, sig := range dec.Sign {
		if !s.user.MaySignAs(sig.Domain) || sig.Domain != dec.Domain {
			return nil, fmt.Errorf("%w: policy chose d=%s (decided %s), which user %s may not sign as", errSigning, sig.Domain, dec.Domain, s.user.Name)
		}
		k, err := o.Directory.GetKey(ctx, sig.KeyID)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", errSigning, sig.KeyID, err)
		}
		if k.Domain != sig.Domain.String() || k.Selector != sig.Selector || k.State != store.KeyActive {
			return nil, fmt.Errorf("%w: key %d is %s._domainkey.%s (%s), not the %s._domainkey.%s decided",
				errSigning, k.ID, k.Selector, k.Domain, k.State, sig.Selector, sig.Domain)
		}
		var cs crypto.Signer
		if cs, err = o.Keys.Signer(ctx, k.Ref()); err != nil {
			return nil, fmt.Errorf("%w: open key %s._domainkey.%s: %w", errSigning, k.Selector, k.Domain, err)
		}
		ks = append(ks, dkim.SignKey{Domain: k.Domain, Selector: k.Selector, Signer: cs})
	}
	// Every signature of a decision has the same d= (policy.Decision.Domain),
	// so the domain's oversigning choice holds for all of them.
	dom, err := o.Directory.GetDomain(ctx, dec.Domain.String())
	if err != nil {
		return nil, fmt.Errorf("%w: domain %s: %w", errSigning, dec.Domain, err)
	}
	signer, err := dkim.NewSigner(&dkim.SignOptions{Keys: ks, Oversign: dom.OversignFields(), Now: o.Now,
		MaxHeaderBytes: o.MaxHeaderBytes, Expiration: max(o.SignatureLifetime, 0)})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSigning, err)
	}
	return signer, nil
}

// signError classifies a signer failure: the message's fault (550) or ours
// (451, never unsigned).
func signError(err error) error {
	if errors.Is(err, dkim.ErrMalformedHeader) || errors.Is(err, dkim.ErrFromCount) || errors.Is(err, dkim.ErrHeaderTooLarge) {
		return fmt.Errorf("%w: signer: %w", errMalformed, err)
	}
	return fmt.Errorf("%w: %w", errSigning, err)
}

// tagWriter marks write errors with a failure class, so that a read error
// (the client's) and a write error (ours) stay apart.
type tagWriter struct {
	w   io.Writer
	tag error
}

func (t *tagWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		if t.tag == errSigning {
			return n, signError(err)
		}
		return n, fmt.Errorf("%w: %w", t.tag, err)
	}
	return n, nil
}

// received gives the trace field RFC 5321 §4.4 asks every relay to add,
// with the protocol named as RFC 3848 does.
func (s *session) received() string {
	proto := "ESMTP"
	if s.tls {
		proto += "S"
	}
	if s.authUser != nil {
		proto += "A"
	}
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (dkimd) with %s id %s;\r\n\t%s\r\n",
		heloText(s.helo), s.c.ip, s.srv.opts.Hostname, proto, s.msgID,
		s.srv.now().Format(time.RFC1123Z))
}

// heloText keeps the HELO name if it looks like a host name or address
// literal, so that client text cannot shape the header.
func heloText(h string) string {
	if h == "" || len(h) > 255 {
		return "unknown"
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-:[]_", c) >= 0) {
			return "unknown"
		}
	}
	return h
}

// lineGuard passes a message through, failing at the first bare CR, bare
// LF or NUL. go-smtp ends DATA only at CRLF.CRLF and passes bare line ends
// on; another MTA downstream might end the message at LF.LF, CR.CR or
// similar and read what follows as a second message of the attacker's
// making (SMTP smuggling). NUL is refused too (RFC 5322 §2.3 forbids it),
// as a downstream MTA that strips it would see CRLF.CRLF in CRLF NUL . CRLF.
type lineGuard struct {
	r   io.Reader
	cr  bool
	err error
}

func (g *lineGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if n > 0 {
		if crlfOnly(p[:n], g.cr) {
			g.cr = p[n-1] == '\r'
		} else if i := g.check(p[:n]); i >= 0 {
			return i, g.err
		}
	}
	if err == io.EOF && g.cr {
		g.err = fmt.Errorf("%w: CR at the end", errBareLineEnd)
		return n, g.err
	}
	return n, err
}

// check finds the first byte of q that is not allowed where it is, and
// sets g.err; -1 means none (and then g.cr tells whether q ends in CR).
func (g *lineGuard) check(q []byte) int {
	for i, c := range q {
		switch {
		case g.cr && c != '\n':
			g.err = fmt.Errorf("%w: CR not followed by LF", errBareLineEnd)
		case c == '\n' && !g.cr:
			g.err = fmt.Errorf("%w: LF without CR", errBareLineEnd)
		case c == 0:
			g.err = fmt.Errorf("%w: NUL byte", errBareLineEnd)
		}
		if g.err != nil {
			return i
		}
		g.cr = c == '\r'
	}
	return -1
}

// crlfOnly reports whether q, coming after a CR if cr, holds no NUL, and CR
// and LF only as CRLF (a CR at its end may wait for its LF). It is true of
// nearly every message, and finds the line ends with bytes.IndexByte, a
// few instructions per word: checking every byte, as check does to find
// the fault, took about a tenth of the CPU the relay spent on an unsigned
// 200 KiB message.
func crlfOnly(q []byte, cr bool) bool {
	if bytes.IndexByte(q, 0) >= 0 {
		return false
	}
	if cr {
		if q[0] != '\n' {
			return false
		}
		q = q[1:]
	}
	for {
		i := bytes.IndexByte(q, '\r')
		if i < 0 {
			return bytes.IndexByte(q, '\n') < 0
		}
		if bytes.IndexByte(q[:i], '\n') >= 0 {
			return false
		}
		if i+1 == len(q) {
			return true
		}
		if q[i+1] != '\n' {
			return false
		}
		q = q[i+2:]
	}
}

// readHeader reads up to and including the empty line that ends the header
// (or the whole message, if it has no body), at most max bytes, appending
// it to buf.
func readHeader(br *bufio.Reader, max int, buf []byte) ([]byte, error) {
	h := buf
	lineStart := true
	for {
		line, err := br.ReadSlice('\n')
		h = append(h, line...)
		if len(h)-len(buf) > max {
			return nil, fmt.Errorf("%w: more than %d bytes", errHeaderTooLarge, max)
		}
		switch {
		case err == bufio.ErrBufferFull:
			lineStart = false
			continue
		case err == io.EOF:
			return h, nil
		case err != nil:
			return nil, err
		}
		if lineStart && string(line) == "\r\n" {
			return h, nil
		}
		lineStart = true
	}
}

// readIdentity gives the sender a re-authenticating server names in its
// identity header. Missing, empty or given twice, the message is refused:
// a sender the log cannot name is what this kind of user exists to avoid,
// and two values would let a sender plant one of its own.
func readIdentity(hdr dkim.Header, header string) (string, error) {
	vs := hdr.Values(header)
	if len(vs) != 1 {
		return "", fmt.Errorf("%w: %d %s fields", errIdentity, len(vs), header)
	}
	v := strings.TrimSpace(strings.ReplaceAll(vs[0], "\r\n", ""))
	if v == "" || len(v) > maxIdentityLen {
		return "", fmt.Errorf("%w: %s is empty or longer than %d bytes", errIdentity, header, maxIdentityLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: %s holds control characters", errIdentity, header)
		}
	}
	return v, nil
}
