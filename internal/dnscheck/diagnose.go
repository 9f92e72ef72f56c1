package dnscheck

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/dkimd/dkimd/internal/dkim"
)

// finding is what one answer says about the record.
type finding struct {
	status Status
	detail string
	advice []string
}

// expectation is what the record should hold, prepared once per check.
type expectation struct {
	expect Expect
	// key is the expected public key, nil when unknown.
	key crypto.PublicKey
	// name is the record name, selector the selector, for advice.
	name, selector string
	// value is the record to publish, "" when unknown; p its p= (base64).
	value, p string
}

func newExpectation(o *Options, name string) (*expectation, error) {
	e := &expectation{expect: o.Expect, name: name, selector: o.Selector}
	if o.PublicKey != nil {
		key, err := publicKey(o.PublicKey)
		if err != nil {
			return nil, err
		}
		e.key = key
		v, err := dkim.RecordValue(key)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrOptions, err)
		}
		e.value = v
		_, e.p, _ = strings.Cut(v, "p=")
	}
	if e.expect == ExpectRevoked {
		e.value, e.p = dkim.RevokedRecordValue(keyType(e.key)), ""
	}
	return e, nil
}

// publicKey accepts the public key types dkim publishes, by pointer or value,
// and a private key in their place (its public half).
func publicKey(k crypto.PublicKey) (crypto.PublicKey, error) {
	if s, ok := k.(interface{ Public() crypto.PublicKey }); ok {
		k = s.Public()
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			break
		}
		return k, nil
	case rsa.PublicKey:
		if k.N == nil {
			break
		}
		return &k, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			break
		}
		return k, nil
	case *ed25519.PublicKey:
		if k == nil || len(*k) != ed25519.PublicKeySize {
			break
		}
		return *k, nil
	}
	return nil, fmt.Errorf("%w: public key of type %T (want RSA or Ed25519)", ErrOptions, k)
}

func keyType(k crypto.PublicKey) string {
	if _, ok := k.(ed25519.PublicKey); ok {
		return "ed25519"
	}
	return "rsa"
}

// sameKey compares two public keys by value: RSA modulus and exponent,
// Ed25519 bytes. Comparing record text would call a key with different
// white space, tag order or an equivalent encoding (PKCS#1 for SPKI) wrong.
func sameKey(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *rsa.PublicKey:
		b, ok := b.(*rsa.PublicKey)
		return ok && a.E == b.E && a.N.Cmp(b.N) == 0
	case ed25519.PublicKey:
		b, ok := b.(ed25519.PublicKey)
		return ok && bytes.Equal(a, b)
	}
	return false
}

// describeKey names a key for people: "RSA 2048-bit key sha256:0123abcd…"
// (the digest of its SubjectPublicKeyInfo, or of the raw Ed25519 bytes).
func describeKey(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		der, _ := x509.MarshalPKIXPublicKey(k)
		sum := sha256.Sum256(der)
		return fmt.Sprintf("RSA %d-bit key sha256:%s", k.N.BitLen(), hex.EncodeToString(sum[:6]))
	case ed25519.PublicKey:
		sum := sha256.Sum256(k)
		return "Ed25519 key sha256:" + hex.EncodeToString(sum[:6])
	}
	return fmt.Sprintf("%T", k)
}

// isDKIM tells whether a TXT value is meant as a DKIM key record, as opposed
// to another TXT record sharing the name (a site verification token).
func isDKIM(v string) bool {
	l := strings.ToLower(v)
	return strings.Contains(l, "v=dkim1") || strings.Contains(l, "p=") || strings.Contains(l, "k=")
}

// diagnose judges the TXT records found at the end of the CNAME chain.
// aliased says the record name led there through a CNAME.
func (e *expectation) diagnose(recs []TXTRecord, aliased bool, final string) finding {
	var cands []TXTRecord
	for _, r := range recs {
		if isDKIM(r.Value) {
			cands = append(cands, r)
		}
	}
	switch {
	case len(cands) == 1:
		return e.judge(cands[0])
	case len(cands) > 1:
		return e.multiple(cands)
	}
	f := finding{status: StatusNotFound, detail: "no TXT record"}
	if aliased {
		f = finding{status: StatusCNAMEDangling, detail: fmt.Sprintf("alias for %s, which has no TXT record", final)}
		f.advice = []string{fmt.Sprintf("%s is an alias (CNAME) for %s, where there is no DKIM record. Finish the setup at the provider %s belongs to, correct the CNAME's target, or replace the CNAME by a TXT record. %s", e.name, final, final, e.publishHint())}
	} else {
		f.advice = []string{e.createHint()}
	}
	if len(recs) > 0 {
		f.detail = fmt.Sprintf("no DKIM record; the TXT record there is %q", clip(recs[0].Value))
	}
	return f
}

func (e *expectation) multiple(cands []TXTRecord) finding {
	vals := make([]string, len(cands))
	for i, c := range cands {
		vals[i] = c.Value
	}
	good, parts := -1, make([]string, len(cands))
	for i, c := range cands {
		g := e.judge(c)
		parts[i] = fmt.Sprintf("%d) %s: %s", i+1, distinctive(vals, i), g.status)
		if good < 0 && g.status.good(e.expect) {
			good = i
		}
	}
	f := finding{
		status: StatusMultipleRecords,
		detail: fmt.Sprintf("%d DKIM records at one name: %s", len(cands), strings.Join(parts, "; ")),
	}
	if good >= 0 {
		f.advice = []string{fmt.Sprintf("Delete every TXT record at %s except record %d, the one with %s: receivers pick one of them at random or fail (RFC 6376 §3.6.2.2).", e.name, good+1, distinctive(vals, good))}
	} else {
		f.advice = []string{fmt.Sprintf("Keep only one TXT record at %s and delete the others: receivers pick one of them at random or fail (RFC 6376 §3.6.2.2). None of them is right; %s", e.name, e.publishHint())}
	}
	return f
}

// distinctive quotes the part of vals[i] that tells it from the other
// values: records for keys of one kind share their first 60 characters, so
// their beginnings say nothing.
func distinctive(vals []string, i int) string {
	v, at := vals[i], 0
	for j, o := range vals {
		if j == i {
			continue
		}
		n := 0
		for n < len(v) && n < len(o) && v[n] == o[n] {
			n++
		}
		at = max(at, n)
	}
	switch {
	case at == 0:
		return fmt.Sprintf("%q", clip(v))
	case at >= len(v):
		return fmt.Sprintf("%q (the shortest)", clip(v))
	}
	end := min(len(v), at+16)
	return fmt.Sprintf("%q at character %d", "…"+v[at:end]+"…", at+1)
}

// judge diagnoses one DKIM TXT record.
func (e *expectation) judge(r TXTRecord) finding {
	v := r.Value
	rec, err := dkim.ParseRecord(v)
	switch {
	case err == nil:
		return e.compare(rec)
	case errors.Is(err, dkim.ErrKeyRevoked):
		f := finding{status: StatusRevoked, detail: "empty p=: the key is revoked"}
		if e.expect != ExpectRevoked {
			f.advice = []string{"An empty p= revokes the key: receivers fail every signature made with it. If this key should sign, " + lowerFirst(e.publishHint()) + " Otherwise sign with a key on another selector."}
		}
		return f
	}
	if ss := findStrays(v); len(ss) > 0 {
		f := finding{status: StatusStrayCharacters, detail: "the value contains " + describeStrays(v, ss)}
		if rec, err := dkim.ParseRecord(cleanStrays(v)); err == nil || errors.Is(err, dkim.ErrKeyRevoked) {
			under := finding{status: StatusRevoked}
			if err == nil {
				under = e.compare(rec)
			}
			if under.status.good(e.expect) {
				f.detail += "; without them the record would be right"
			} else {
				f.detail += "; without them: " + string(under.status)
			}
		}
		f.advice = []string{"Remove the quotes, backslashes, parentheses and odd spaces pasted along with the value: a DNS provider's form wants the value as one plain string, without quotes. " + e.publishHint()}
		return f
	}
	if f, ok := e.kindMismatch(v); ok {
		return f
	}
	if f, ok := e.truncated(r, err); ok {
		return f
	}
	if errors.Is(err, dkim.ErrKeyTooShort) {
		return finding{
			status: StatusWeakKey,
			detail: dkim.Describe(err),
			advice: []string{"Receivers ignore RSA keys shorter than 1024 bits (RFC 8301). Generate a new key of 2048 bits on a new selector, publish it, and sign with it."},
		}
	}
	return finding{status: StatusBadTags, detail: dkim.Describe(err), advice: []string{badTagAdvice(err) + " " + e.publishHint()}}
}

func badTagAdvice(err error) string {
	switch {
	case errors.Is(err, dkim.ErrRecordVersion):
		return "The value must begin with v=DKIM1 (or leave v= out)."
	case errors.Is(err, dkim.ErrRecordNoKey):
		return "The value has no p= tag, which carries the key."
	case errors.Is(err, dkim.ErrKeyType):
		return "k= must be rsa or ed25519 and fit the key in p=."
	case errors.Is(err, dkim.ErrKeyService):
		return "s= must include email (or be left out)."
	}
	return "The value is not a valid DKIM tag list."
}

// compare judges a record that parsed, against the expectation.
func (e *expectation) compare(rec *dkim.Record) finding {
	if !rec.AllowsHash("sha256") {
		return finding{
			status: StatusBadTags,
			detail: fmt.Sprintf("h=%s excludes sha256, the only hash dkimd signs with", strings.Join(rec.HashAlgorithms, ":")),
			advice: []string{"Remove the h= tag (or add sha256 to it). " + e.publishHint()},
		}
	}
	var f finding
	switch {
	case e.expect == ExpectRevoked && (e.key == nil || sameKey(rec.PublicKey, e.key)):
		f = finding{status: StatusStillPublished, detail: "still publishes " + describeKey(rec.PublicKey)}
		f.advice = []string{fmt.Sprintf("Replace the value at %s with %q (an empty p= revokes the key, RFC 6376 §3.6.1).", e.name, e.value)}
	case e.key == nil:
		f = finding{status: StatusPublished, detail: describeKey(rec.PublicKey)}
	case sameKey(rec.PublicKey, e.key):
		f = finding{status: StatusMatch, detail: describeKey(rec.PublicKey)}
	default:
		f = finding{status: StatusWrongKey, detail: fmt.Sprintf("publishes %s, expected %s", describeKey(rec.PublicKey), describeKey(e.key))}
		f.advice = []string{fmt.Sprintf("The record at %s holds another key, perhaps an older one or one for another server. %s", e.name, e.publishHint())}
	}
	if rec.Testing() && f.status.good(e.expect) {
		f.advice = append(f.advice, "The record has t=y (testing): some receivers treat failures as if unsigned. Remove t=y once signing works.")
	}
	return f
}

// kindMismatch catches a k= that does not fit the key in p=: an Ed25519 key
// published without k=ed25519 (k= defaults to rsa), or the reverse.
func (e *expectation) kindMismatch(v string) (finding, bool) {
	tags, err := dkim.ParseTagList(v)
	if err != nil {
		return finding{}, false
	}
	p, _ := tags.Get("p")
	der, err := base64.StdEncoding.DecodeString(removeFWS(p))
	if err != nil {
		return finding{}, false
	}
	k, hasK := tags.Get("k")
	if !hasK {
		k = "rsa"
	}
	var detail, fix string
	switch {
	case k == "rsa" && len(der) == ed25519.PublicKeySize:
		detail, fix = "p= holds an Ed25519 key but k= is "+map[bool]string{true: "rsa", false: "missing (meaning rsa)"}[hasK], "k=ed25519"
	case k == "ed25519":
		if _, err := x509.ParsePKIXPublicKey(der); err == nil {
			detail, fix = "p= holds an RSA key but k= is ed25519", "k=rsa"
		}
	}
	if detail == "" {
		return finding{}, false
	}
	return finding{status: StatusBadTags, detail: detail, advice: []string{"Set " + fix + ". " + e.publishHint()}}, true
}

// truncated recognizes a value cut short: a single string of exactly 255
// bytes (a DNS host that silently cuts at the limit of one TXT string,
// RFC 1035 §3.3), p= that is the start of the expected key, or p= that does
// not decode at all.
func (e *expectation) truncated(r TXTRecord, err error) (finding, bool) {
	_, p, _ := strings.Cut(r.Value, "p=")
	p, _, _ = strings.Cut(p, ";")
	p = removeFWS(p)
	var detail string
	switch {
	case len(r.Strings) == 1 && len(r.Strings[0]) == dkim.MaxTXTString && !errors.Is(err, dkim.ErrRecordVersion):
		detail = "the value is exactly 255 characters, the most one TXT string holds: it was cut there"
	case e.p != "" && len(p) < len(e.p) && strings.HasPrefix(e.p, p) && errors.Is(err, dkim.ErrKeyDecode):
		detail = fmt.Sprintf("p= holds the first %d of the key's %d characters", len(p), len(e.p))
	case errors.Is(err, dkim.ErrKeyDecode):
		detail = fmt.Sprintf("p= (%d characters) does not decode to a key: cut short or damaged", len(p))
	default:
		return finding{}, false
	}
	f := finding{status: StatusTruncated, detail: detail}
	f.advice = []string{"The value was cut short, often by a DNS host that stops at 255 characters. Enter the whole value; if the form cuts it, enter it as several strings of at most 255 characters."}
	if e.value != "" {
		f.advice = append(f.advice, "In a zone file: "+dkim.ZoneLine(e.name, e.value))
	}
	return f, true
}

// createHint says how to create the missing record.
func (e *expectation) createHint() string {
	host := e.selector + "._domainkey"
	if e.expect == ExpectRevoked {
		return fmt.Sprintf("The record is gone. Receivers treat a missing key like a revoked one, but dkimd expects the revocation to be published: create a TXT record named %s (host %q at most DNS providers) with the value %s", e.name, host, e.value)
	}
	v := e.value
	if v == "" {
		v = "that dkimd shows for the key (dkimd record)"
	}
	return fmt.Sprintf("Create a TXT record named %s (host %q at most DNS providers) with the value %s. If you just created it, wait a few minutes and check again.", e.name, host, v)
}

// publishHint says what value to publish, when it is known.
func (e *expectation) publishHint() string {
	if e.value == "" {
		return "Publish the value dkimd shows for this key (dkimd record)."
	}
	return fmt.Sprintf("Publish exactly this value at %s: %s", e.name, e.value)
}

// removeFWS drops white space, which base64 in p= may hold (RFC 6376 §3.6.1).
func removeFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// clip shortens a value quoted in a detail.
func clip(s string) string {
	const max = 48
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
