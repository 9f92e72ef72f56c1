package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
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
// that a copy added on the way breaks the signature (RFC 6376 §8.15).
var DefaultOversign = []string{"From"}

// Errors from signing.
var (
	ErrNoKeys      = errors.New("dkim: no signing keys given")
	ErrKeyMismatch = errors.New("dkim: signing key unusable")
	ErrFromCount   = errors.New("dkim: message must have exactly one From field")
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
	// DefaultOversign, an empty non-nil slice none.
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
			return nil, fmt.Errorf("%w: invalid domain %q or selector %q", ErrKeyMismatch, clip(k.Domain), clip(k.Selector))
		}
	}
	if o.HeaderKeys == nil {
		o.HeaderKeys = DefaultHeaderKeys
	}
	if o.Oversign == nil {
		o.Oversign = DefaultOversign
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
		return "", fmt.Errorf("%w: nil key", ErrKeyMismatch)
	}
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("%w: RSA key of %d bits (RFC 8301 minimum is 1024)", ErrKeyMismatch, pub.N.BitLen())
		}
		return "rsa-sha256", nil
	case ed25519.PublicKey:
		return "ed25519-sha256", nil
	}
	return "", fmt.Errorf("%w: %T keys cannot sign DKIM", ErrKeyMismatch, k.Public())
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
		return fmt.Errorf("%w (it has %d)", ErrFromCount, from)
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
// oversigned one once more.
func (s *Signer) signedNames() []string {
	var names []string
	for _, name := range s.opts.HeaderKeys {
		key := strings.ToLower(name)
		n := 0
		for _, f := range s.fields {
			if f.key == key {
				n++
			}
		}
		for _, o := range s.opts.Oversign {
			if strings.EqualFold(o, name) {
				n++
				break
			}
		}
		for ; n > 0; n-- {
			names = append(names, key)
		}
	}
	return names
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
		return nil, fmt.Errorf("%w: %w", ErrKeyMismatch, err)
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
	for i, name := range s.Headers {
		word := name
		if i == 0 {
			word = "h=" + word
		}
		if i == len(s.Headers)-1 {
			word += ";"
		} else {
			word += ":"
		}
		f.tag(word)
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
func (f *folder) tag(word string) {
	sep := " "
	if f.join {
		sep = ""
	}
	if f.line+len(sep)+len(word) > maxLine {
		f.b.WriteString("\r\n ")
		f.line = 1
		sep = ""
	}
	f.b.WriteString(sep + word)
	f.line += len(sep) + len(word)
	f.join = strings.HasSuffix(word, ":")
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
