package dkim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrSignatureSyntax is returned for a DKIM-Signature field that cannot be
// used: a bad tag list, a missing required tag, a malformed value.
var ErrSignatureSyntax = sentinel("malformed DKIM-Signature")

// Signature holds the tags of a DKIM-Signature field (RFC 6376 §3.5).
type Signature struct {
	Version       string
	Algorithm     string // a=, e.g. "rsa-sha256"
	HeaderCanon   Canonicalization
	BodyCanon     Canonicalization
	Domain        string // d=
	Selector      string // s=
	Identity      string // i=; empty when absent
	Headers       []string
	BodyHash      []byte // bh=
	Data          []byte // b=
	BodyLength    int64  // l=; -1 when absent
	QueryMethods  string // q=
	Timestamp     time.Time
	Expiration    time.Time
	HasTimestamp  bool
	HasExpiration bool
	b64           string // b= as written, without white space
}

// KeyAlgorithm and HashAlgorithm split a= ("rsa-sha256" → "rsa", "sha256").
func (s *Signature) KeyAlgorithm() string { k, _, _ := strings.Cut(s.Algorithm, "-"); return k }

// HashAlgorithm returns the hash half of a=.
func (s *Signature) HashAlgorithm() string { _, h, _ := strings.Cut(s.Algorithm, "-"); return h }

// ParseSignature parses the value of a DKIM-Signature field (what follows the
// colon). It checks syntax only; the verifier decides what it accepts.
func ParseSignature(value string) (*Signature, error) {
	tags, err := ParseTagList(value)
	if err != nil {
		return nil, errorf(ErrSignatureSyntax, ": ", "%s", tagListDetail(err))
	}
	s := &Signature{BodyLength: -1, HeaderCanon: Simple, BodyCanon: Simple}
	for _, name := range []string{"v", "a", "b", "bh", "d", "h", "s"} {
		if _, ok := tags.Get(name); !ok {
			return nil, errorf(ErrSignatureSyntax, ": ", "required tag %s= is missing", name)
		}
	}
	s.Version, _ = tags.Get("v")
	if s.Version != "1" {
		return nil, errorf(ErrSignatureSyntax, ": ", "v=%s, want v=1", clip(s.Version))
	}
	s.Algorithm, _ = tags.Get("a")
	s.Algorithm = strings.ToLower(s.Algorithm)
	if k, h, ok := strings.Cut(s.Algorithm, "-"); !ok || k == "" || h == "" {
		return nil, errorf(ErrSignatureSyntax, ": ", "a=%s is not key-hash, e.g. rsa-sha256", clip(s.Algorithm))
	}
	if b, _ := tags.Get("b"); true {
		if s.Data, err = decodeB64(b); err != nil {
			return nil, errorf(ErrSignatureSyntax, ": ", "b= %v", err)
		}
		s.b64 = removeFWS(b)
	}
	if bh, _ := tags.Get("bh"); true {
		if s.BodyHash, err = decodeB64(bh); err != nil {
			return nil, errorf(ErrSignatureSyntax, ": ", "bh= %v", err)
		}
	}
	s.Domain, _ = tags.Get("d")
	s.Selector, _ = tags.Get("s")
	if s.Domain == "" || s.Selector == "" {
		return nil, errorf(ErrSignatureSyntax, ": ", "empty d= or s=")
	}
	h, _ := tags.Get("h")
	for _, name := range strings.Split(h, ":") {
		name = trimFWS(name)
		if !validFieldName(name) {
			return nil, errorf(ErrSignatureSyntax, ": ", "h= holds an invalid field name %q", clip(name))
		}
		s.Headers = append(s.Headers, name)
	}
	if c, ok := tags.Get("c"); ok {
		if s.HeaderCanon, s.BodyCanon, err = parseCanonicalization(c); err != nil {
			return nil, errorf(ErrSignatureSyntax, ": ", "c= %v", err)
		}
	}
	s.Identity, _ = tags.Get("i")
	if l, ok := tags.Get("l"); ok {
		n, err := parseDecimal(l, 76)
		if err != nil {
			return nil, errorf(ErrSignatureSyntax, ": ", "l= %v", err)
		}
		s.BodyLength = n
	}
	s.QueryMethods, _ = tags.Get("q")
	if t, ok := tags.Get("t"); ok {
		n, err := parseDecimal(t, 12)
		if err != nil {
			return nil, errorf(ErrSignatureSyntax, ": ", "t= %v", err)
		}
		s.Timestamp, s.HasTimestamp = time.Unix(n, 0), true
	}
	if x, ok := tags.Get("x"); ok {
		n, err := parseDecimal(x, 12)
		if err != nil {
			return nil, errorf(ErrSignatureSyntax, ": ", "x= %v", err)
		}
		s.Expiration, s.HasExpiration = time.Unix(n, 0), true
	}
	return s, nil
}

// parseDecimal reads 1*digits of at most max digits (RFC 6376 §3.5 limits t=
// and x= to 12 digits and l= to 76).
func parseDecimal(v string, max int) (int64, error) {
	if v == "" || len(v) > max {
		return 0, fmt.Errorf("%q is not a number of 1 to %d digits", clip(v), max)
	}
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, fmt.Errorf("%q is not a number", clip(v))
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", clip(v))
	}
	return n, nil
}

func decodeB64(v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(removeFWS(v))
	if err != nil {
		return nil, errors.New("is not valid base64")
	}
	return b, nil
}

// stripSignatureValue removes the value of the b= tag from a raw
// DKIM-Signature field, with the white space around it (RFC 6376 §3.7), and
// drops the final CRLF: the form hashed last when signing and verifying.
func stripSignatureValue(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	s := string(raw[:len(raw)-2]) // without the final CRLF
	colon := strings.IndexByte(s, ':')
	out = append(out, s[:colon+1]...)
	rest := s[colon+1:]
	for len(rest) > 0 {
		spec, after, more := strings.Cut(rest, ";")
		name, _, hasEq := strings.Cut(spec, "=")
		if hasEq && trimFWS(name) == "b" {
			eq := strings.IndexByte(spec, '=')
			out = append(out, spec[:eq+1]...)
		} else {
			out = append(out, spec...)
		}
		if more {
			out = append(out, ';')
		}
		rest = after
	}
	return out
}
