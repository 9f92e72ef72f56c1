package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// DefaultHeaderKeys are the header fields signed when present, in h= order.
var DefaultHeaderKeys = []string{
	"From", "Date", "Subject", "Reply-To", "Sender", "To", "Cc", "Bcc",
	"Message-ID", "In-Reply-To", "References", "Content-Type", "MIME-Version",
	"Content-Transfer-Encoding",
}

// DefaultOversign are the fields listed in h= once more than they occur, so
// that a copy added on the way, or one added where the message had none,
// breaks the signature (RFC 6376 §5.4.2, §8.15): every field of
// DefaultHeaderKeys, since RFC 5322 §3.6 allows each of the originator,
// destination, identification and informational ones at most once, and RFC
// 2045 §3-§6 the MIME ones once per header. Rspamd oversigns the same set.
var DefaultOversign = []string{
	"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Date", "Subject",
	"Message-ID", "In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// Errors from signing.
var (
	ErrNoKeys      = sentinel("no signing keys given")
	ErrKeyMismatch = sentinel("signing key unusable")
	ErrFromCount   = sentinel("message must have exactly one From field")
)

// SignKey is a private key with the domain and selector where its public
// half is published.
type SignKey struct {
	Domain   string
	Selector string
	Signer   crypto.Signer
}

// SignOptions configures a Signer. The zero value of each field is the
// documented default.
type SignOptions struct {
	// Keys sign the message, one DKIM-Signature each, in this order.
	Keys []SignKey
	// HeaderKeys names the fields to sign when present; nil means
	// DefaultHeaderKeys.
	HeaderKeys []string
	// Oversign names fields to list once more than they occur; nil means
	// DefaultOversign, an empty non-nil slice none. A field named here is
	// signed even when HeaderKeys does not name it.
	Oversign []string
	// HeaderCanon and BodyCanon default to Relaxed.
	HeaderCanon, BodyCanon Canonicalization
	// Expiration, when positive, adds x= that long after t=.
	Expiration time.Duration
	// Now is the clock for t=; nil means time.Now.
	Now func() time.Time
	// MaxHeaderBytes bounds the header; zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
}

// Signer signs a message written to it. After Close, Signatures returns the
// DKIM-Signature fields to put on top of the message, unchanged otherwise.
type Signer struct {
	opts   SignOptions
	split  headerSplitter
	fields []field
	inBody bool
	body   *bodyCanon
	hash   bodyHash
	sigs   []string
	err    error
}

// bodyHash is a SHA-256 of the canonical body.
type bodyHash struct{ h hashWriter }

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

// NewSigner checks the options and returns a Signer ready for the message.
func NewSigner(opts *SignOptions) (*Signer, error) {
	o := *opts
	if len(o.Keys) == 0 {
		return nil, ErrNoKeys
	}
	for _, k := range o.Keys {
		if _, err := algorithmFor(k.Signer); err != nil {
			return nil, err
		}
		if !validDomain(k.Domain) || !validSelector(k.Selector) {
			return nil, errorf(ErrKeyMismatch, ": ", "invalid domain %q or selector %q", clip(k.Domain), clip(k.Selector))
		}
	}
	if o.HeaderKeys == nil {
		o.HeaderKeys = DefaultHeaderKeys
	}
	if o.Oversign == nil {
		o.Oversign = DefaultOversign
	}
	for _, list := range [][]string{o.HeaderKeys, o.Oversign} {
		for _, name := range list {
			// h= is a tag value, which ";" would end (RFC 6376 §3.2).
			if !validFieldName(name) || strings.Contains(name, ";") {
				return nil, fmt.Errorf("dkim: invalid header field name %q", clip(name))
			}
		}
	}
	if o.HeaderCanon == "" {
		o.HeaderCanon = Relaxed
	}
	if o.BodyCanon == "" {
		o.BodyCanon = Relaxed
	}
	for _, c := range []Canonicalization{o.HeaderCanon, o.BodyCanon} {
		if c != Simple && c != Relaxed {
			return nil, fmt.Errorf("dkim: unknown canonicalization %q", c)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	s := &Signer{opts: o, split: headerSplitter{max: o.MaxHeaderBytes}}
	s.hash.h = sha256.New()
	s.body = newBodyCanon(o.BodyCanon, s.hash.h)
	return s, nil
}

// algorithmFor names the a= value for a key: rsa-sha256 or ed25519-sha256.
func algorithmFor(k crypto.Signer) (string, error) {
	if k == nil {
		return "", errorf(ErrKeyMismatch, ": ", "nil key")
	}
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return "", errorf(ErrKeyMismatch, ": ", "RSA key of %d bits (RFC 8301 minimum is 1024)", pub.N.BitLen())
		}
		return "rsa-sha256", nil
	case ed25519.PublicKey:
		return "ed25519-sha256", nil
	}
	return "", errorf(ErrKeyMismatch, ": ", "%T keys cannot sign DKIM", k.Public())
}

// Write takes the next bytes of the message.
func (s *Signer) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.inBody {
		_, s.err = s.body.Write(p)
		return len(p), s.err
	}
	done, header, body, err := s.split.feed(p)
	if err != nil {
		s.err = err
		return 0, err
	}
	if done {
		if s.err = s.startBody(header); s.err == nil {
			_, s.err = s.body.Write(body)
		}
		s.split = headerSplitter{}
	}
	return len(p), s.err
}

func (s *Signer) startBody(header []byte) error {
	fields, err := parseHeader(header)
	if err != nil {
		return err
	}
	from := 0
	for _, f := range fields {
		if f.key == "from" {
			from++
		}
	}
	if from != 1 {
		return errorf(ErrFromCount, " ", "(it has %d)", from)
	}
	s.fields, s.inBody = fields, true
	return nil
}

// Close finishes the message and computes the signatures.
func (s *Signer) Close() error {
	if s.err != nil {
		return s.err
	}
	if !s.inBody {
		if s.err = s.startBody(s.split.rest()); s.err != nil {
			return s.err
		}
	}
	if s.err = s.body.Close(); s.err != nil {
		return s.err
	}
	bh := s.hash.h.Sum(nil)
	names := s.signedNames()
	now := s.opts.Now()
	for _, k := range s.opts.Keys {
		alg, _ := algorithmFor(k.Signer)
		sig := &Signature{
			Version:      "1",
			Algorithm:    alg,
			HeaderCanon:  s.opts.HeaderCanon,
			BodyCanon:    s.opts.BodyCanon,
			Domain:       k.Domain,
			Selector:     k.Selector,
			Headers:      names,
			BodyHash:     bh,
			BodyLength:   -1,
			Timestamp:    now,
			HasTimestamp: true,
		}
		if s.opts.Expiration > 0 {
			sig.Expiration, sig.HasExpiration = now.Add(s.opts.Expiration), true
		}
		prefix := formatSignaturePrefix(sig)
		b, err := signHeader(k.Signer, s.opts.HeaderCanon, s.fields, names, []byte(prefix))
		if err != nil {
			s.err = err
			return err
		}
		s.sigs = append(s.sigs, prefix+foldBase64(b, len("b="))+"\r\n")
	}
	return nil
}

// Signatures returns the DKIM-Signature fields, each ending in CRLF, in the
// order of the keys. Put them on top of the message in that order.
func (s *Signer) Signatures() []string { return s.sigs }

// Sign reads a whole message and returns its DKIM-Signature fields.
func Sign(r io.Reader, opts *SignOptions) ([]string, error) {
	s, err := NewSigner(opts)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(s, r); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return s.Signatures(), nil
}

// signedNames builds h=: each configured field as often as it occurs, an
// oversigned one once more, so that it is listed even when absent; then the
// oversigned fields HeaderKeys does not name, the same way. It allocates
// only the list.
func (s *Signer) signedNames() []string {
	names := make([]string, 0, len(s.opts.HeaderKeys)+len(s.opts.Oversign)+len(s.fields))
	add := func(name string, over bool) {
		key := strings.ToLower(name)
		n := 0
		for _, f := range s.fields {
			if f.key == key {
				n++
			}
		}
		if over {
			n++
		}
		for ; n > 0; n-- {
			names = append(names, key)
		}
	}
	for _, name := range s.opts.HeaderKeys {
		add(name, containsFold(s.opts.Oversign, name))
	}
	for i, name := range s.opts.Oversign {
		if !containsFold(s.opts.HeaderKeys, name) && !containsFold(s.opts.Oversign[:i], name) {
			add(name, true)
		}
	}
	return names
}

// containsFold reports whether list holds name, compared without case as
// header field names are (RFC 5322 §1.2.2).
func containsFold(list []string, name string) bool {
	for _, l := range list {
		if strings.EqualFold(l, name) {
			return true
		}
	}
	return false
}

// headerHash computes the hash signed in b= (RFC 6376 §3.7): the fields named
// in h=, picked bottom-up, canonicalized, then the DKIM-Signature field itself
// with an empty b= value and no final CRLF.
func headerHash(c Canonicalization, fields []field, names []string, sigNoB []byte) []byte {
	h := sha256.New()
	p := newHeaderPicker(fields)
	for _, name := range names {
		if f := p.pick(name); f != nil {
			h.Write(canonicalHeader(c, f.raw))
		}
	}
	canon := canonicalHeader(c, append(sigNoB[:len(sigNoB):len(sigNoB)], crlf...))
	h.Write(canon[:len(canon)-2])
	return h.Sum(nil)
}

// signHeader signs the header hash: RSA PKCS#1 v1.5 over SHA-256, or Ed25519
// over the SHA-256 digest (RFC 8463 §3).
func signHeader(k crypto.Signer, c Canonicalization, fields []field, names []string, sigNoB []byte) ([]byte, error) {
	digest := headerHash(c, fields, names, sigNoB)
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := k.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	b, err := k.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, errorf(ErrKeyMismatch, ": ", "%v", err)
	}
	return b, nil
}

// maxLine is where signature lines are folded (RFC 5322 §2.1.1 advises 78).
const maxLine = 78

// formatSignaturePrefix renders a DKIM-Signature field up to and including
// "b=", folded at tag boundaries and inside h=. It writes the tags a Signer
// sets: never l= (RFC 6376 §8.2) nor q= (dns/txt is the default).
func formatSignaturePrefix(s *Signature) string {
	f := folder{line: len("DKIM-Signature:")}
	// One allocation for the whole prefix: the fixed tags, h= and bh=.
	f.b.Grow(256 + 16*len(s.Headers))
	f.b.WriteString("DKIM-Signature:")
	f.tag("v=" + s.Version + ";")
	f.tag("a=" + s.Algorithm + ";")
	f.tag("c=" + string(s.HeaderCanon) + "/" + string(s.BodyCanon) + ";")
	f.tag("d=" + s.Domain + ";")
	f.tag("s=" + s.Selector + ";")
	if s.Identity != "" {
		f.tag("i=" + s.Identity + ";")
	}
	if s.HasTimestamp {
		f.tag("t=" + strconv.FormatInt(s.Timestamp.Unix(), 10) + ";")
	}
	if s.HasExpiration {
		f.tag("x=" + strconv.FormatInt(s.Expiration.Unix(), 10) + ";")
	}
	// The names go in as parts, not concatenated: with every default field
	// oversigned h= has twenty-odd names, and a string each adds up.
	for i, name := range s.Headers {
		pre, post := "", ":"
		if i == 0 {
			pre = "h="
		}
		if i == len(s.Headers)-1 {
			post = ";"
		}
		f.parts(pre, name, post)
	}
	f.tag("bh=" + base64.StdEncoding.EncodeToString(s.BodyHash) + ";")
	f.b.WriteString("\r\n b=")
	return f.b.String()
}

type folder struct {
	b    strings.Builder
	line int
	join bool // the last word ended in ":" inside h=
}

// tag appends a word after a space, or on a new folded line when it would
// pass maxLine. Words inside h= join without a space.
func (f *folder) tag(word string) { f.parts("", word, "") }

// parts appends the word pre+word+post as tag does, without joining the
// strings first.
func (f *folder) parts(pre, word, post string) {
	n := len(pre) + len(word) + len(post)
	sep := " "
	if f.join {
		sep = ""
	}
	if f.line+len(sep)+n > maxLine {
		f.b.WriteString("\r\n ")
		f.line = 1
		sep = ""
	}
	f.b.WriteString(sep)
	f.b.WriteString(pre)
	f.b.WriteString(word)
	f.b.WriteString(post)
	f.line += len(sep) + n
	last := post
	if last == "" {
		last = word
	}
	f.join = strings.HasSuffix(last, ":")
}

// foldBase64 folds a base64 value into lines of at most maxLine, the first
// line already holding indent characters after its leading space.
func foldBase64(data []byte, indent int) string {
	v := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	room := maxLine - 1 - indent
	for len(v) > room {
		b.WriteString(v[:room])
		b.WriteString("\r\n ")
		v = v[room:]
		room = maxLine - 1
	}
	b.WriteString(v)
	return b.String()
}
