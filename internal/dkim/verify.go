package dkim

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is a DKIM result as RFC 8601 §2.7.1 names it.
type Status string

// The results a signature can have.
const (
	StatusNone      Status = "none"
	StatusPass      Status = "pass"
	StatusFail      Status = "fail"
	StatusPolicy    Status = "policy"
	StatusNeutral   Status = "neutral"
	StatusTempError Status = "temperror"
	StatusPermError Status = "permerror"
)

// Errors that classify a failed verification; Result.Err wraps one of them
// (or one of the record errors, such as ErrKeyRevoked).
var (
	ErrKeyNotFound     = sentinel("no key record found")
	ErrTempDNS         = sentinel("temporary DNS failure")
	ErrAlgorithm       = sentinel("algorithm not accepted")
	ErrBadDomain       = sentinel("d= is not a valid domain name")
	ErrIdentity        = sentinel("i= is not within d=")
	ErrFromNotSigned   = sentinel("From is not signed")
	ErrExpired         = sentinel("signature expired")
	ErrKeyRefused      = sentinel("key record rules out this signature")
	ErrBodyHash        = sentinel("body hash did not verify")
	ErrSignature       = sentinel("signature did not verify")
	ErrBodyLength      = sentinel("l= is longer than the body")
	ErrPartialBody     = sentinel("signature covers only part of the body (l=)")
	ErrTooManySigs     = sentinel("too many signatures, not checked")
	ErrFieldTooLarge   = sentinel("DKIM-Signature field too large")
	ErrUnsupportedHash = sentinel("hash algorithm not supported")
)

// Resolver looks up the TXT records at a name. Each returned string is one
// record with its strings concatenated. A name with no TXT records must give
// an error that wraps ErrKeyNotFound; any other error counts as temporary.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, name string) ([]string, error)

// LookupTXT calls f.
func (f ResolverFunc) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return f(ctx, name)
}

// VerifyOptions configures a Verifier. Zero values are the defaults.
type VerifyOptions struct {
	// Resolver fetches key records; required.
	Resolver Resolver
	// Now is the clock for x=; nil means time.Now.
	Now func() time.Time
	// MaxSignatures is how many DKIM-Signature fields are checked, from the
	// top; later ones get a permerror. Zero means 8.
	MaxSignatures int
	// MaxHeaderBytes bounds the header; zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
}

// DefaultMaxSignatures is the default of VerifyOptions.MaxSignatures.
const DefaultMaxSignatures = 8

// maxSignatureField bounds one DKIM-Signature field: a 4096-bit b= with a
// long h= fits well within it.
const maxSignatureField = 16 << 10

// Result is the outcome for one DKIM-Signature field.
type Result struct {
	Status Status
	// Err classifies a status other than pass (errors.Is with the Err*
	// values of this package); nil on pass.
	Err error
	// Signature is the parsed field, nil when it did not parse.
	Signature *Signature
	// KeyBits is the size of the key that checked the signature (RSA bits,
	// 256 for Ed25519), zero when no key was used.
	KeyBits int
	// Testing is the key record's t=y flag.
	Testing bool
}

// Domain returns d=, or "" when the signature did not parse.
func (r *Result) Domain() string {
	if r.Signature == nil {
		return ""
	}
	return r.Signature.Domain
}

// Reason describes the result in words, without key material.
func (r *Result) Reason() string {
	if r.Err == nil {
		if r.Signature != nil && r.Signature.BodyLength >= 0 {
			return fmt.Sprintf("good signature covering the first %d body bytes (l=)", r.Signature.BodyLength)
		}
		return "good signature"
	}
	return reason(r.Err)
}

// Verifier checks the DKIM signatures of a message written to it.
type Verifier struct {
	ctx    context.Context
	opts   VerifyOptions
	split  headerSplitter
	inBody bool
	fields []field
	checks []*check
	bodies map[bodyKey]*bodyHasher
	err    error
}

// check is the state of one signature while the body streams.
type check struct {
	res   Result
	raw   []byte // the field as read
	body  *bodyHasher
	final bool // res is decided before the body
}

type bodyKey struct {
	canon  Canonicalization
	length int64
}

// bodyHasher hashes a body canonicalization, up to l= bytes when given.
type bodyHasher struct {
	canon *bodyCanon
	sum   *limitHash
}

type limitHash struct {
	h     hashWriter
	limit int64 // -1: none
	total int64 // canonical body length seen
}

func (l *limitHash) Write(p []byte) (int, error) {
	n := len(p)
	if l.limit >= 0 {
		if room := l.limit - l.total; int64(len(p)) > room {
			p = p[:max(room, 0)]
		}
	}
	l.h.Write(p)
	l.total += int64(n)
	return n, nil
}

// NewVerifier returns a Verifier for one message.
func NewVerifier(ctx context.Context, opts *VerifyOptions) (*Verifier, error) {
	o := *opts
	if o.Resolver == nil {
		return nil, errors.New("dkim: VerifyOptions.Resolver is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSignatures <= 0 {
		o.MaxSignatures = DefaultMaxSignatures
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return &Verifier{ctx: ctx, opts: o, split: headerSplitter{max: o.MaxHeaderBytes}, bodies: map[bodyKey]*bodyHasher{}}, nil
}

// Write takes the next bytes of the message.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.inBody {
		return len(p), v.writeBody(p)
	}
	done, header, body, err := v.split.feed(p)
	if err != nil {
		v.err = err
		return 0, err
	}
	if done {
		if v.err = v.startBody(header); v.err == nil {
			v.err = v.writeBody(body)
		}
		v.split = headerSplitter{}
	}
	return len(p), v.err
}

func (v *Verifier) writeBody(p []byte) error {
	for _, b := range v.bodies {
		if _, err := b.canon.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// startBody parses the header and the signatures in it, and sets up one body
// hash per distinct (canonicalization, l=) among the signatures left to check.
func (v *Verifier) startBody(header []byte) error {
	fields, err := parseHeader(header)
	if err != nil {
		return err
	}
	v.fields, v.inBody = fields, true
	for _, f := range fields {
		if f.key != "dkim-signature" {
			continue
		}
		c := &check{raw: f.raw}
		v.checks = append(v.checks, c)
		if len(v.checks) > v.opts.MaxSignatures {
			c.decide(StatusPermError, errorf(ErrTooManySigs, " ", "(limit %d)", v.opts.MaxSignatures))
			continue
		}
		if len(f.raw) > maxSignatureField {
			c.decide(StatusPermError, ErrFieldTooLarge)
			continue
		}
		v.precheck(c, f)
		if c.final {
			continue
		}
		s := c.res.Signature
		k := bodyKey{s.BodyCanon, s.BodyLength}
		if v.bodies[k] == nil {
			sum := &limitHash{h: sha256.New(), limit: s.BodyLength}
			v.bodies[k] = &bodyHasher{canon: newBodyCanon(s.BodyCanon, sum), sum: sum}
		}
		c.body = v.bodies[k]
	}
	return nil
}

func (c *check) decide(st Status, err error) {
	c.res.Status, c.res.Err, c.final = st, err, true
}

// precheck applies the rules that need neither the key nor the body.
func (v *Verifier) precheck(c *check, f field) {
	s, err := ParseSignature(f.value())
	if err != nil {
		// RFC 8601 §2.7.1: a signature with syntax errors is neutral.
		c.decide(StatusNeutral, err)
		return
	}
	c.res.Signature = s
	switch s.Algorithm {
	case "rsa-sha256", "ed25519-sha256":
	case "rsa-sha1":
		c.decide(StatusPermError, errorf(ErrAlgorithm, ": ", "rsa-sha1 is obsolete (RFC 8301 §3.1)"))
		return
	default:
		c.decide(StatusPermError, errorf(ErrAlgorithm, ": ", "a=%s", clip(s.Algorithm)))
		return
	}
	if !validDomain(s.Domain) {
		c.decide(StatusPermError, errorf(ErrBadDomain, ": ", "d=%s", clip(s.Domain)))
		return
	}
	if !validSelector(s.Selector) && !validSelector(strings.ReplaceAll(s.Selector, "_", "x")) {
		c.decide(StatusPermError, errorf(ErrSignatureSyntax, ": ", "s=%s is not a valid selector", clip(s.Selector)))
		return
	}
	if s.Identity != "" {
		at := strings.LastIndexByte(s.Identity, '@')
		idDomain := strings.ToLower(s.Identity[at+1:])
		d := strings.ToLower(s.Domain)
		if at < 0 || (idDomain != d && !strings.HasSuffix(idDomain, "."+d)) {
			c.decide(StatusPermError, errorf(ErrIdentity, ": ", "i=%s, d=%s (RFC 6376 §3.5)", clip(s.Identity), clip(s.Domain)))
			return
		}
	}
	fromSigned := false
	for _, h := range s.Headers {
		fromSigned = fromSigned || strings.EqualFold(h, "from")
	}
	if !fromSigned {
		c.decide(StatusPermError, errorf(ErrFromNotSigned, " ", "(RFC 6376 §5.4)"))
		return
	}
	if s.HasExpiration {
		if s.HasTimestamp && !s.Expiration.After(s.Timestamp) {
			c.decide(StatusPermError, errorf(ErrSignatureSyntax, ": ", "x= is not after t= (RFC 6376 §3.5)"))
			return
		}
		if now := v.opts.Now(); now.After(s.Expiration) {
			c.decide(StatusPermError, errorf(ErrExpired, " ", "at %s", s.Expiration.UTC().Format(time.RFC3339)))
			return
		}
	}
	if s.QueryMethods != "" && !hasItem(splitColon(s.QueryMethods), "dns/txt") {
		c.decide(StatusPermError, errorf(ErrAlgorithm, ": ", "q=%s", clip(s.QueryMethods)))
	}
}

// Close finishes the message and returns one result per DKIM-Signature
// field, top to bottom. The error is for the message as a whole (a header
// that cannot be parsed); per-signature problems are in the results.
func (v *Verifier) Close() ([]Result, error) {
	if v.err != nil {
		return nil, v.err
	}
	if !v.inBody {
		if v.err = v.startBody(v.split.rest()); v.err != nil {
			return nil, v.err
		}
	}
	for _, b := range v.bodies {
		if err := b.canon.Close(); err != nil {
			return nil, err
		}
	}
	keys := map[string]keyAnswer{}
	results := make([]Result, 0, len(v.checks))
	for _, c := range v.checks {
		if !c.final {
			v.finish(c, keys)
		}
		results = append(results, c.res)
	}
	return results, nil
}

type keyAnswer struct {
	rec *Record
	err error
}

// finish checks a signature against its key and the body and header hashes.
func (v *Verifier) finish(c *check, keys map[string]keyAnswer) {
	s := c.res.Signature
	name := RecordName(s.Selector, s.Domain)
	ans, ok := keys[name]
	if !ok {
		ans.rec, ans.err = lookupKey(v.ctx, v.opts.Resolver, name)
		keys[name] = ans
	}
	if ans.err != nil {
		if errors.Is(ans.err, ErrTempDNS) {
			c.decide(StatusTempError, ans.err)
		} else {
			c.decide(StatusPermError, ans.err)
		}
		return
	}
	rec := ans.rec
	c.res.Testing = rec.Testing()
	if rec.KeyType != s.KeyAlgorithm() {
		c.decide(StatusPermError, errorf(ErrKeyRefused, ": ", "key is k=%s, signature a=%s", clip(rec.KeyType), s.Algorithm))
		return
	}
	if !rec.AllowsHash(s.HashAlgorithm()) {
		c.decide(StatusPermError, errorf(ErrKeyRefused, ": ", "key allows h=%s only", clip(strings.Join(rec.HashAlgorithms, ":"))))
		return
	}
	if rec.Strict() && s.Identity != "" {
		at := strings.LastIndexByte(s.Identity, '@')
		if !strings.EqualFold(s.Identity[at+1:], s.Domain) {
			c.decide(StatusPermError, errorf(ErrKeyRefused, ": ", "key has t=s, i= must be in d= itself"))
			return
		}
	}
	switch pub := rec.PublicKey.(type) {
	case *rsa.PublicKey:
		c.res.KeyBits = pub.N.BitLen()
	case ed25519.PublicKey:
		c.res.KeyBits = 256
	}
	sum := c.body.sum
	if s.BodyLength >= 0 && s.BodyLength > sum.total {
		c.decide(StatusFail, errorf(ErrBodyLength, ": ", "l=%d, canonical body is %d bytes", s.BodyLength, sum.total))
		return
	}
	if subtle.ConstantTimeCompare(sum.h.Sum(nil), s.BodyHash) != 1 {
		c.decide(StatusFail, ErrBodyHash)
		return
	}
	digest := headerHash(s.HeaderCanon, v.fields, s.Headers, stripSignatureValue(c.raw))
	var err error
	switch pub := rec.PublicKey.(type) {
	case *rsa.PublicKey:
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, s.Data)
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, digest, s.Data) {
			err = errors.New("ed25519")
		}
	}
	if err != nil {
		c.decide(StatusFail, ErrSignature)
		return
	}
	if s.BodyLength >= 0 && s.BodyLength < sum.total {
		// Content after l= is unsigned and could be anything: never
		// present this as covering the message (RFC 6376 §8.2).
		c.decide(StatusPolicy, errorf(ErrPartialBody, ": ", "%d of %d canonical body bytes", s.BodyLength, sum.total))
		return
	}
	c.res.Status, c.res.Err = StatusPass, nil
}

// lookupKey fetches and parses the key record at name. Several TXT records
// at one name are allowed; the first that parses as a DKIM key is used
// (RFC 6376 §3.6.2.2).
func lookupKey(ctx context.Context, r Resolver, name string) (*Record, error) {
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) {
			return nil, errorf(ErrKeyNotFound, " ", "at %s", name)
		}
		return nil, errorf(ErrTempDNS, ": ", "%s: %v", name, err)
	}
	if len(txts) == 0 {
		return nil, errorf(ErrKeyNotFound, " ", "at %s", name)
	}
	var firstErr error
	for _, txt := range txts {
		rec, err := ParseRecord(txt)
		if err == nil {
			return rec, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, errorf(firstErr, " ", "(at %s)", name)
}

// Verify reads a whole message and checks every DKIM signature in it.
func Verify(ctx context.Context, r io.Reader, opts *VerifyOptions) ([]Result, error) {
	v, err := NewVerifier(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(v, r); err != nil {
		return nil, err
	}
	return v.Close()
}
