package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
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
// memory (bounded); the body streams to a temporary file and the signer.
func (s *session) receive(ctx context.Context, r io.Reader) (string, error) {
	o := &s.srv.opts
	u := s.user
	br := s.srv.getReader(&lineGuard{r: r})
	defer s.srv.putReader(br)
	hdr, err := readHeader(br, o.MaxHeaderBytes)
	if err != nil {
		return "", err
	}
	fields, err := parseFields(hdr)
	if err != nil {
		return "", err
	}
	froms := fieldValues(fields, "From")
	if len(froms) != 1 {
		// RFC 5322 §3.6: exactly one From.
		return "", fmt.Errorf("%w: %d From fields", errMalformed, len(froms))
	}
	fromDomain, ferr := policy.FromDomain(froms[0])
	if !u.AllowForeignFrom {
		if ferr != nil {
			return "", fmt.Errorf("%w: From does not name one address of a domain: %v", errFromDomain, ferr)
		}
		if !u.MaySignAs(fromDomain) {
			return "", fmt.Errorf("%w: %s for user %s", errFromDomain, fromDomain, u.Name)
		}
	}
	var identity string
	if u.Auth == store.AuthReauth {
		if identity, err = readIdentity(fields, u.EffectiveIdentityHeader()); err != nil {
			return "", err
		}
	}

	dec := policy.Decide(ctx, o.Directory, u, froms[0])
	s.txLog.Info("signing_decision", "decision", dec, "identity", identity)
	if dec.Reason == policy.ReasonLookupFailed {
		return "", fmt.Errorf("%w: policy: %w", errLookup, dec.Err)
	}
	var signer *dkim.Signer
	if dec.Signs() {
		if signer, err = s.newSigner(ctx, dec); err != nil {
			return "", err
		}
	}

	f, err := os.CreateTemp(o.SpoolDir, "relay-*.eml")
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSpool, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	bw := s.srv.getWriter(f)
	defer s.srv.putWriter(bw)
	var w io.Writer = &tagWriter{w: bw, tag: errSpool}
	if signer != nil {
		w = io.MultiWriter(w, &tagWriter{w: signer, tag: errSigning})
	}
	if _, err := w.Write(hdr); err != nil {
		return "", err
	}
	// The client's errors (bare line ends, size limit) come back as the
	// reader gave them, ours tagged by tagWriter.
	if _, err := br.WriteTo(w); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("%w: %w", errSpool, err)
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
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("%w: %w", errSpool, err)
	}
	env := Envelope{From: s.from, To: s.to, User: u.Name, Identity: identity,
		ClientAddr: s.c.ip.String(), MsgID: s.msgID, Decision: dec}
	fr := s.srv.getReader(f)
	defer s.srv.putReader(fr)
	body := io.MultiReader(strings.NewReader(prefix.String()), fr)
	id, err := o.Queue.Enqueue(ctx, env, body)
	if errors.Is(err, ErrRefused) {
		return "", fmt.Errorf("%w: %w", errQueueRefused, err)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", errQueue, err)
	}
	s.srv.rate.sent(u.Name, s.srv.now())
	o.Metrics.observe(dec)
	s.txLog.Info("message_queued", "queue_id", id, "from", s.from, "rcpts", len(s.to),
		"signed", dec.Signs(), "reason", string(dec.Reason), "identity", identity)
	return id, nil
}

// newSigner opens the keys the decision names. Every signature is checked
// once more against the user and the key row, so that a policy bug can
// never make a signature for another tenant's domain: better 451 than that.
func (s *session) newSigner(ctx context.Context, dec policy.Decision) (*dkim.Signer, error) {
	o := &s.srv.opts
	var ks []dkim.SignKey
	for _, sig := range dec.Sign {
		if !s.user.MaySignAs(sig.Domain) {
			return nil, fmt.Errorf("%w: policy chose d=%s, which user %s may not sign as", errSigning, sig.Domain, s.user.Name)
		}
		k, err := o.Directory.GetKey(ctx, sig.KeyID)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", errSigning, sig.KeyID, err)
		}
		if k.Domain != sig.Domain || k.Selector != sig.Selector || k.State != store.KeyActive {
			return nil, fmt.Errorf("%w: key %d is %s._domainkey.%s (%s), not the %s._domainkey.%s decided",
				errSigning, k.ID, k.Selector, k.Domain, k.State, sig.Selector, sig.Domain)
		}
		var cs crypto.Signer
		if cs, err = o.Keys.Signer(ctx, k); err != nil {
			return nil, fmt.Errorf("%w: open key %s._domainkey.%s: %w", errSigning, k.Selector, k.Domain, err)
		}
		ks = append(ks, dkim.SignKey{Domain: k.Domain, Selector: k.Selector, Signer: cs})
	}
	signer, err := dkim.NewSigner(&dkim.SignOptions{Keys: ks, Now: o.Now, MaxHeaderBytes: o.MaxHeaderBytes, Expiration: max(o.SignatureLifetime, 0)})
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

// getReader and getWriter hand out 32 KiB buffers for a message,
// reused: allocating them per message kept the garbage collector busy.
func (s *Server) getReader(r io.Reader) *bufio.Reader {
	br, _ := s.readers.Get().(*bufio.Reader)
	if br == nil {
		return bufio.NewReaderSize(r, 32<<10)
	}
	br.Reset(r)
	return br
}

func (s *Server) putReader(br *bufio.Reader) {
	br.Reset(nil)
	s.readers.Put(br)
}

func (s *Server) getWriter(w io.Writer) *bufio.Writer {
	bw, _ := s.writers.Get().(*bufio.Writer)
	if bw == nil {
		return bufio.NewWriterSize(w, 32<<10)
	}
	bw.Reset(w)
	return bw
}

func (s *Server) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	s.writers.Put(bw)
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
	for i := 0; i < n; i++ {
		c := p[i]
		switch {
		case g.cr && c != '\n':
			g.err = fmt.Errorf("%w: CR not followed by LF", errBareLineEnd)
		case c == '\n' && !g.cr:
			g.err = fmt.Errorf("%w: LF without CR", errBareLineEnd)
		case c == 0:
			g.err = fmt.Errorf("%w: NUL byte", errBareLineEnd)
		}
		if g.err != nil {
			return i, g.err
		}
		g.cr = c == '\r'
	}
	if err == io.EOF && g.cr {
		g.err = fmt.Errorf("%w: CR at the end", errBareLineEnd)
		return n, g.err
	}
	return n, err
}

// readHeader reads up to and including the empty line that ends the header
// (or the whole message, if it has no body), at most max bytes.
func readHeader(br *bufio.Reader, max int) ([]byte, error) {
	var h []byte
	lineStart := true
	for {
		line, err := br.ReadSlice('\n')
		h = append(h, line...)
		if len(h) > max {
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

// field is one header field: its name as written and its value, folded.
type field struct {
	name, value string
}

// parseFields splits a header (CRLF line ends, maybe the empty line at the
// end) into fields, as the dkim package does: a line starting with white
// space continues the field before it; any other line needs a colon after
// a name of printable ASCII (RFC 5322 §2.2, §3.6.8).
func parseFields(h []byte) ([]field, error) {
	var fields []field
	for len(h) > 0 {
		end := bytes.Index(h, []byte("\r\n"))
		var l []byte
		if end < 0 {
			l, h = h, nil
		} else {
			l, h = h[:end], h[end+2:]
		}
		if len(l) == 0 {
			break // the empty line that ends the header
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(fields) == 0 {
				return nil, fmt.Errorf("%w: first line starts with white space", errMalformed)
			}
			fields[len(fields)-1].value += "\r\n" + string(l)
			continue
		}
		colon := bytes.IndexByte(l, ':')
		if colon < 0 {
			return nil, fmt.Errorf("%w: a line is not a header field (no colon)", errMalformed)
		}
		name := strings.TrimRight(string(l[:colon]), " \t")
		if _, err := store.NormalizeHeaderName(name); err != nil {
			return nil, fmt.Errorf("%w: invalid field name", errMalformed)
		}
		fields = append(fields, field{name: name, value: string(l[colon+1:])})
	}
	return fields, nil
}

// fieldValues gives the values of every field called name, in any case.
func fieldValues(fields []field, name string) []string {
	var vs []string
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// readIdentity gives the sender a re-authenticating server names in its
// identity header. Missing, empty or given twice, the message is refused:
// a sender the log cannot name is what this kind of user exists to avoid,
// and two values would let a sender plant one of its own.
func readIdentity(fields []field, header string) (string, error) {
	vs := fieldValues(fields, header)
	if len(vs) != 1 {
		return "", fmt.Errorf("%w: %d %s fields", errIdentity, len(vs), header)
	}
	v := strings.TrimSpace(strings.NewReplacer("\r\n", "").Replace(vs[0]))
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
