package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
)

// Errors from parsing a DNS key record (RFC 6376 §3.6.1), one per failure
// class. The dnscheck package turns them into advice.
var (
	ErrRecordSyntax  = sentinel("key record is not a valid tag list")
	ErrRecordVersion = sentinel("key record has a wrong v= tag")
	ErrRecordNoKey   = sentinel("key record has no p= tag")
	ErrKeyRevoked    = sentinel("key revoked (empty p=)")
	ErrKeyType       = sentinel("unsupported key type")
	ErrKeyDecode     = sentinel("public key does not decode")
	ErrKeyTooShort   = sentinel("RSA key shorter than 1024 bits")
	ErrKeyService    = sentinel("key record is not for email (s= tag)")
)

// MinRSABits is the shortest RSA key a verifier accepts (RFC 8301 §3.2).
const MinRSABits = 1024

// Record is a parsed DKIM key record.
type Record struct {
	// KeyType is the k= tag: "rsa" (the default) or "ed25519".
	KeyType string
	// HashAlgorithms is the h= tag split at colons; nil when absent (any).
	HashAlgorithms []string
	// Services is the s= tag split at colons; nil when absent ("*").
	Services []string
	// Flags is the t= tag split at colons ("y" testing, "s" strict).
	Flags []string
	// Notes is the n= tag.
	Notes string
	// PublicKey is an *rsa.PublicKey or an ed25519.PublicKey.
	PublicKey crypto.PublicKey
}

// Testing reports the t=y flag: the domain is testing DKIM.
func (r *Record) Testing() bool { return hasItem(r.Flags, "y") }

// Strict reports the t=s flag: i= must not be a subdomain of d=.
func (r *Record) Strict() bool { return hasItem(r.Flags, "s") }

// AllowsHash reports whether the h= tag permits a hash algorithm.
func (r *Record) AllowsHash(h string) bool {
	return r.HashAlgorithms == nil || hasItem(r.HashAlgorithms, h)
}

// ParseRecord parses the value of a key record, given as the concatenation of
// the strings of one TXT record. A revoked key (empty p=) is returned with
// ErrKeyRevoked and a record whose PublicKey is nil.
func ParseRecord(txt string) (*Record, error) {
	tags, err := ParseTagList(txt)
	if err != nil {
		return nil, errorf(ErrRecordSyntax, ": ", "%s", tagListDetail(err))
	}
	if len(tags) > 0 && tags[0].Name != "v" {
		if _, ok := tags.Get("v"); ok {
			return nil, errorf(ErrRecordVersion, ": ", "v= must be the first tag")
		}
	}
	if v, ok := tags.Get("v"); ok && v != "DKIM1" {
		return nil, errorf(ErrRecordVersion, ": ", "v=%s, want v=DKIM1", clip(v))
	}
	r := &Record{KeyType: "rsa"}
	if k, ok := tags.Get("k"); ok {
		r.KeyType = k
	}
	if h, ok := tags.Get("h"); ok {
		r.HashAlgorithms = splitColon(h)
	}
	if s, ok := tags.Get("s"); ok {
		r.Services = splitColon(s)
	}
	if t, ok := tags.Get("t"); ok {
		r.Flags = splitColon(t)
	}
	r.Notes, _ = tags.Get("n")
	p, ok := tags.Get("p")
	if !ok {
		return nil, ErrRecordNoKey
	}
	if r.Services != nil && !hasItem(r.Services, "*") && !hasItem(r.Services, "email") {
		return r, errorf(ErrKeyService, ": ", "s=%s", clip(strings.Join(r.Services, ":")))
	}
	p = removeFWS(p)
	if p == "" {
		return r, ErrKeyRevoked
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return r, errorf(ErrKeyDecode, ": ", "p= is not valid base64 (%d characters; cut short?)", len(p))
	}
	switch r.KeyType {
	case "rsa":
		pub, err := parseRSAPublicKey(der)
		if err != nil {
			return r, err
		}
		r.PublicKey = pub
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return r, errorf(ErrKeyDecode, ": ", "an Ed25519 key is 32 bytes, p= holds %d", len(der))
		}
		r.PublicKey = ed25519.PublicKey(der)
	default:
		return r, errorf(ErrKeyType, ": ", "k=%s", clip(r.KeyType))
	}
	return r, nil
}

// parseRSAPublicKey reads SubjectPublicKeyInfo (RFC 6376 §3.6.1) and, as
// receivers in the field do, a bare PKCS#1 RSAPublicKey.
func parseRSAPublicKey(der []byte) (*rsa.PublicKey, error) {
	var pub *rsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errorf(ErrKeyType, ": ", "p= holds a %T key, k= says rsa", k)
		}
		pub = rk
	} else if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		pub = k
	} else {
		return nil, errorf(ErrKeyDecode, ": ", "p= is not an RSA public key (%d bytes; cut short?)", len(der))
	}
	if bits := pub.N.BitLen(); bits < MinRSABits {
		return nil, errorf(ErrKeyTooShort, ": ", "%d bits (RFC 8301)", bits)
	}
	return pub, nil
}

// RecordName is the DNS name of a key record: <selector>._domainkey.<domain>.
func RecordName(selector, domain string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}

// RecordValue renders the key record for a public key as one string, the
// form a DNS provider's web form takes: "v=DKIM1; k=rsa; p=...". RSA keys are
// published as SubjectPublicKeyInfo, Ed25519 keys as the raw 32 bytes
// (RFC 8463 §4).
func RecordValue(pub crypto.PublicKey) (string, error) {
	var k string
	var raw []byte
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", errorf(ErrKeyType, ": ", "%v", err)
		}
		k, raw = "rsa", der
	case ed25519.PublicKey:
		k, raw = "ed25519", pub
	default:
		return "", errorf(ErrKeyType, ": ", "%T", pub)
	}
	return "v=DKIM1; k=" + k + "; p=" + base64.StdEncoding.EncodeToString(raw), nil
}

// RevokedRecordValue is the record to publish for a revoked key of the
// given type (RFC 6376 §3.6.1: an empty p= means revoked).
func RevokedRecordValue(keyType string) string {
	return "v=DKIM1; k=" + keyType + "; p="
}

// MaxTXTString is the longest character-string a TXT record holds
// (RFC 1035 §3.3: one length byte).
const MaxTXTString = 255

// SplitTXT cuts a record value into strings of at most 255 bytes, the way a
// zone file or DNS API must carry a value longer than one string. Receivers
// concatenate the strings without separators (RFC 6376 §3.6.2.2).
func SplitTXT(value string) []string {
	var parts []string
	for len(value) > MaxTXTString {
		parts = append(parts, value[:MaxTXTString])
		value = value[MaxTXTString:]
	}
	return append(parts, value)
}

// ZoneLine renders a record as a zone-file line (RFC 1035 §5.1): the fully
// qualified name, class IN, type TXT, and the value split into quoted strings
// of at most 255 bytes inside parentheses. Quotes and backslashes in the value
// are escaped (a DKIM record has neither, but n= notes could).
func ZoneLine(name, value string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(name, "."))
	b.WriteString(". IN TXT (")
	for _, part := range splitEscaped(value) {
		b.WriteString(" \"")
		b.WriteString(part)
		b.WriteString("\"")
	}
	b.WriteString(" )")
	return b.String()
}

// splitEscaped splits like SplitTXT, counting 255 bytes of value per string
// while escaping quotes and backslashes in the output.
func splitEscaped(value string) []string {
	parts := SplitTXT(value)
	for i, p := range parts {
		if strings.ContainsAny(p, `"\`) {
			p = strings.ReplaceAll(p, `\`, `\\`)
			parts[i] = strings.ReplaceAll(p, `"`, `\"`)
		}
	}
	return parts
}

func splitColon(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ":") {
		out = append(out, trimFWS(f))
	}
	return out
}

func hasItem(list []string, item string) bool {
	for _, x := range list {
		if strings.EqualFold(x, item) {
			return true
		}
	}
	return false
}
