package dkim

import (
	"context"
	"crypto"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// mutMessage is the message the mutation table signs.
const mutMessage = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>\r\n" +
	"Subject: Quarterly report\r\n" +
	"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <m1@example.com>\r\n" +
	"\r\n" +
	"Hello Bob,\r\n" +
	"\r\n" +
	"The numbers are in.\r\n"

// mutEnv is what a mutation row may change: the signing key and its
// record, and the record of the other algorithm's key.
type mutEnv struct {
	alg    string // "rsa" (2048 bits) or "ed"
	key    crypto.Signer
	record string
	other  string
	keys   *fixedKeyset
}

// baseSignature is what the Signer writes for mutMessage at fixedNow with a
// day's expiration, as a hand-made Signature for rows that change a tag.
func (e *mutEnv) baseSignature() *Signature {
	alg := "rsa-sha256"
	if e.alg == "ed" {
		alg = "ed25519-sha256"
	}
	return &Signature{
		Version: "1", Algorithm: alg, HeaderCanon: Relaxed, BodyCanon: Relaxed,
		Domain: "example.com", Selector: e.alg,
		Headers: []string{"from", "from", "date", "date", "subject", "subject", "reply-to", "sender",
			"to", "to", "cc", "bcc", "message-id", "message-id", "in-reply-to", "references",
			"content-type", "mime-version", "content-transfer-encoding"},
		BodyLength: -1,
		Timestamp:  fixedNow, HasTimestamp: true,
		Expiration: fixedNow.Add(24 * time.Hour), HasExpiration: true,
	}
}

// subjectOnce lists Subject in h= once, as a signer that does not
// oversign it would.
func subjectOnce(_ *mutEnv, s *Signature) {
	s.Headers = slices.DeleteFunc(s.Headers, func(h string) bool { return h == "subject" })
	s.Headers = append(s.Headers, "subject")
}

// mutation is one row: a change to a validly signed message, its
// signature, the DNS or the verifier options, and the outcome it must give.
type mutation struct {
	name string
	only string // "rsa" or "ed" when the row applies to one algorithm
	// sig, when set, changes a hand-made copy of the Signer's signature,
	// which is then validly signed (handSign) in place of the Signer's.
	sig func(e *mutEnv, s *Signature)
	// msg changes the signed message (signature fields included).
	msg func(e *mutEnv, signed string) string
	// dns answers the lookup of the signing key's record.
	dns  func(e *mutEnv) ([]string, error)
	opts func(o *VerifyOptions)

	status Status
	err    error // the class of Result.Err; nil means Err must be nil
	// fatal is the class of the error of Verify itself, for a message
	// that cannot be checked at all.
	fatal error
	// n is the number of results (default 1); at is the one checked, the
	// others must pass.
	n, at int
}

func replaceOnce(old, new string) func(*mutEnv, string) string {
	return func(_ *mutEnv, signed string) string {
		if !strings.Contains(signed, old) {
			panic("mutation: " + old + " not in message")
		}
		return strings.Replace(signed, old, new, 1)
	}
}

func records(txts ...string) func(*mutEnv) ([]string, error) {
	return func(*mutEnv) ([]string, error) { return txts, nil }
}

func recordEdit(f func(e *mutEnv) string) func(*mutEnv) ([]string, error) {
	return func(e *mutEnv) ([]string, error) { return []string{f(e)}, nil }
}

// editSigTags rewrites the tag list of the DKIM-Signature field on top of a
// signed message, spec by spec (folding kept).
func editSigTags(f func(specs []string) []string) func(*mutEnv, string) string {
	return func(_ *mutEnv, signed string) string {
		end := strings.Index(signed, "\r\nFrom: ")
		field, rest := signed[:end], signed[end:]
		name, value, _ := strings.Cut(field, ":")
		return name + ":" + strings.Join(f(strings.Split(value, ";")), ";") + rest
	}
}

func dropTag(tag string) func(*mutEnv, string) string {
	return editSigTags(func(specs []string) []string {
		var out []string
		for _, s := range specs {
			if n, _, _ := strings.Cut(s, "="); trimFWS(n) != tag {
				out = append(out, s)
			}
		}
		if len(out) == len(specs) {
			panic("mutation: no tag " + tag)
		}
		return out
	})
}

func setTag(tag, value string) func(*mutEnv, string) string {
	return editSigTags(func(specs []string) []string {
		for i, s := range specs {
			if n, _, _ := strings.Cut(s, "="); trimFWS(n) == tag {
				specs[i] = " " + tag + "=" + value
				return specs
			}
		}
		panic("mutation: no tag " + tag)
	})
}

func addTag(spec string) func(*mutEnv, string) string {
	return editSigTags(func(specs []string) []string {
		return append([]string{" " + spec}, specs...)
	})
}

func dnsError(err error) func(*mutEnv) ([]string, error) {
	return func(*mutEnv) ([]string, error) { return nil, err }
}

func clock(d time.Duration) func(*VerifyOptions) {
	return func(o *VerifyOptions) { o.Now = clockAt(fixedNow.Add(d)) }
}

// canonLen is the length of the relaxed canonical body of mutMessage.
func canonLen(t testing.TB) int64 {
	body := mutMessage[strings.Index(mutMessage, "\r\n\r\n")+4:]
	return int64(len(canonBody(t, Relaxed, []byte(body))))
}

func mutations(t testing.TB) []mutation {
	n := canonLen(t)
	return []mutation{
		{name: "unchanged", status: StatusPass},
		{name: "hand-made signature, unchanged", sig: func(*mutEnv, *Signature) {}, status: StatusPass},

		// The body.
		{name: "RFC 6376 §6.1.3: body changed", msg: replaceOnce("numbers are", "numbers were"), status: StatusFail, err: ErrBodyHash},
		{name: "RFC 6376 §6.1.3: body line added", msg: func(_ *mutEnv, s string) string { return s + "P.S. unsigned\r\n" }, status: StatusFail, err: ErrBodyHash},
		{name: "RFC 6376 §3.4.4: relaxed body ignores trailing white space", msg: replaceOnce("are in.", "are in. \t"), status: StatusPass},
		{name: "RFC 6376 §3.4.4: relaxed body reduces white space", msg: replaceOnce("are in", "are \t  in"), status: StatusPass},
		{name: "RFC 6376 §3.4.4: relaxed body, white space added inside a word", msg: replaceOnce("numbers", "num bers"), status: StatusFail, err: ErrBodyHash},
		{name: "RFC 6376 §3.4.3: trailing empty lines ignored", msg: func(_ *mutEnv, s string) string { return s + "\r\n\r\n" }, status: StatusPass},
		{name: "RFC 6376 §3.4.1: simple body, trailing white space added", sig: func(_ *mutEnv, s *Signature) { s.BodyCanon = Simple },
			msg: replaceOnce("are in.", "are in. "), status: StatusFail, err: ErrBodyHash},

		// The header.
		{name: "RFC 6376 §6.1.3: signed header changed", msg: replaceOnce("Quarterly report", "Quarterly rep0rt"), status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §6.1.3: signed header removed", msg: replaceOnce("Message-ID: <m1@example.com>\r\n", ""), status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §3.4.2: relaxed header: name case, folding and white space", msg: replaceOnce("Subject: Quarterly report", "SUBJECT :  Quarterly\r\n\t report "), status: StatusPass},
		{name: "RFC 6376 §3.4.1: simple header refolded", sig: func(_ *mutEnv, s *Signature) { s.HeaderCanon = Simple },
			msg: replaceOnce("Subject: Quarterly report", "Subject: Quarterly\r\n report"), status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §5.4: unsigned header added", msg: replaceOnce("Subject:", "X-Mailer: test\r\nSubject:"), status: StatusPass},
		{name: "RFC 6376 §5.4: trace header added on top", msg: func(_ *mutEnv, s string) string {
			return "Received: from x by y; Sun, 29 Nov 2026 10:00:01 +0000\r\n" + s
		}, status: StatusPass},
		{name: "RFC 6376 §8.15: From added on top (oversigned)", msg: replaceOnce("From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice"), status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §8.15: From added at the bottom (oversigned)", msg: replaceOnce("\r\n\r\nHello", "\r\nFrom: Mallory <m@evil.example>\r\n\r\nHello"), status: StatusFail, err: ErrSignature},
		// Subject listed once (not oversigned) shows the bottom-up pick.
		{name: "RFC 6376 §5.4.2: second Subject above the signed one", sig: subjectOnce, msg: replaceOnce("Subject:", "Subject: other\r\nSubject:"), status: StatusPass},
		{name: "RFC 6376 §5.4.2: second Subject below the signed one", sig: subjectOnce, msg: replaceOnce("Date:", "Subject: other\r\nDate:"), status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §8.15: Subject added above (oversigned)", msg: replaceOnce("Subject:", "Subject: other\r\nSubject:"), status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §8.15: absent Reply-To added (oversigned)", msg: replaceOnce("Subject:", "Reply-To: m@evil.example\r\nSubject:"), status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §6.1.3: b= changed", msg: func(e *mutEnv, s string) string {
			i := strings.Index(s, " b=") + len(" b=")
			c := byte('A')
			if s[i] == 'A' {
				c = 'B'
			}
			return s[:i] + string(c) + s[i+1:]
		}, status: StatusFail, err: ErrSignature},
		{name: "RFC 6376 §3.7: signature field refolded (relaxed)", msg: replaceOnce("; d=example.com", ";\r\n\td=example.com"), status: StatusPass},

		// Algorithms and keys.
		{name: "RFC 8301 §3.1: a=rsa-sha1", only: "rsa", sig: func(_ *mutEnv, s *Signature) { s.Algorithm = "rsa-sha1" }, status: StatusPermError, err: ErrAlgorithm},
		{name: "RFC 6376 §3.5: unknown a=", sig: func(_ *mutEnv, s *Signature) { s.Algorithm = "rsa-sha512" }, status: StatusPermError, err: ErrAlgorithm},
		{name: "RFC 6376 §3.5: q= other than dns/txt", msg: addTag("q=http/well-known"), status: StatusPermError, err: ErrAlgorithm},
		{name: "RFC 8301 §3.2: 512-bit RSA key", only: "rsa", dns: recordEdit(func(e *mutEnv) string { return "v=DKIM1; k=rsa; p=" + e.keys.rsa512 }), status: StatusPermError, err: ErrKeyTooShort},
		{name: "RFC 8301 §3.2: 768-bit RSA key", only: "rsa", dns: recordEdit(func(e *mutEnv) string { return "v=DKIM1; k=rsa; p=" + e.keys.rsa768 }), status: StatusPermError, err: ErrKeyTooShort},
		{name: "RFC 6376 §3.6.1: key of the other type (k=)", dns: recordEdit(func(e *mutEnv) string { return e.other }), status: StatusPermError, err: ErrKeyRefused},
		{name: "RFC 6376 §3.6.1: h=sha1 in record", dns: recordEdit(func(e *mutEnv) string { return strings.Replace(e.record, "v=DKIM1;", "v=DKIM1; h=sha1;", 1) }), status: StatusPermError, err: ErrKeyRefused},
		{name: "RFC 6376 §3.6.1: h=sha1:sha256 in record", dns: recordEdit(func(e *mutEnv) string { return strings.Replace(e.record, "v=DKIM1;", "v=DKIM1; h=sha1:sha256;", 1) }), status: StatusPass},
		{name: "RFC 6376 §3.6.1: s=other in record", dns: recordEdit(func(e *mutEnv) string { return e.record + "; s=other" }), status: StatusPermError, err: ErrKeyService},
		{name: "RFC 6376 §3.6.1: s=email in record", dns: recordEdit(func(e *mutEnv) string { return e.record + "; s=email" }), status: StatusPass},
		{name: "RFC 6376 §3.6.1: revoked key (empty p=)", dns: recordEdit(func(e *mutEnv) string { return e.record[:strings.Index(e.record, "p=")+2] }), status: StatusPermError, err: ErrKeyRevoked},
		{name: "RFC 6376 §3.6.1: key record is not a tag list", dns: records("v=DKIM1; garbage"), status: StatusPermError, err: ErrRecordSyntax},
		{name: "RFC 6376 §3.6.1: t=y testing flag", dns: recordEdit(func(e *mutEnv) string { return e.record + "; t=y" }), status: StatusPass},

		// DNS.
		{name: "RFC 6376 §6.1.2: NXDOMAIN", dns: dnsError(ErrKeyNotFound), status: StatusPermError, err: ErrKeyNotFound},
		{name: "RFC 6376 §6.1.2: no TXT record", dns: records(), status: StatusPermError, err: ErrKeyNotFound},
		{name: "RFC 6376 §6.1.2: DNS timeout", dns: dnsError(&net.DNSError{Err: "i/o timeout", Name: "rsa._domainkey.example.com", IsTimeout: true}), status: StatusTempError, err: ErrTempDNS},
		{name: "RFC 6376 §6.1.2: DNS SERVFAIL", dns: dnsError(&net.DNSError{Err: "server misbehaving", IsTemporary: true}), status: StatusTempError, err: ErrTempDNS},
		{name: "RFC 6376 §6.1.2: context deadline", dns: dnsError(context.DeadlineExceeded), status: StatusTempError, err: ErrTempDNS},
		{name: "RFC 6376 §3.6.2.2: several TXT records, first garbage", dns: func(e *mutEnv) ([]string, error) { return []string{"google-site-verification=abc", e.record}, nil }, status: StatusPass},

		// d=, i=, h=, t=, x=.
		{name: "RFC 6376 §3.5: d= with a space", sig: func(_ *mutEnv, s *Signature) { s.Domain = "exa mple.com" }, status: StatusPermError, err: ErrBadDomain},
		{name: "RFC 6376 §3.5: d= label starting with a hyphen", sig: func(_ *mutEnv, s *Signature) { s.Domain = "-bad.com" }, status: StatusPermError, err: ErrBadDomain},
		{name: "RFC 6376 §3.5: d= of a single label", sig: func(_ *mutEnv, s *Signature) { s.Domain = "com" }, status: StatusPermError, err: ErrBadDomain},
		{name: "RFC 6376 §3.5: i= outside d=", sig: func(_ *mutEnv, s *Signature) { s.Identity = "alice@example.org" }, status: StatusPermError, err: ErrIdentity},
		{name: "RFC 6376 §3.5: i= in a domain that only ends like d=", sig: func(_ *mutEnv, s *Signature) { s.Identity = "alice@badexample.com" }, status: StatusPermError, err: ErrIdentity},
		{name: "RFC 6376 §3.5: i= without @", sig: func(_ *mutEnv, s *Signature) { s.Identity = "example.com" }, status: StatusPermError, err: ErrIdentity},
		{name: "RFC 6376 §3.5: i= in a subdomain of d=", sig: func(_ *mutEnv, s *Signature) { s.Identity = "alice@mail.example.com" }, status: StatusPass},
		{name: "RFC 6376 §3.5: i= of d= itself, no local part", sig: func(_ *mutEnv, s *Signature) { s.Identity = "@example.com" }, status: StatusPass},
		{name: "RFC 6376 §3.6.1: t=s with i= in a subdomain", sig: func(_ *mutEnv, s *Signature) { s.Identity = "alice@mail.example.com" },
			dns: recordEdit(func(e *mutEnv) string { return e.record + "; t=s" }), status: StatusPermError, err: ErrKeyRefused},
		{name: "RFC 6376 §3.6.1: t=s with i= in d=", sig: func(_ *mutEnv, s *Signature) { s.Identity = "alice@example.com" },
			dns: recordEdit(func(e *mutEnv) string { return e.record + "; t=s" }), status: StatusPass},
		{name: "RFC 6376 §5.4: h= without From", sig: func(_ *mutEnv, s *Signature) { s.Headers = []string{"subject", "date"} }, status: StatusPermError, err: ErrFromNotSigned},
		{name: "RFC 6376 §3.5: x= in the past", opts: clock(25 * time.Hour), status: StatusPermError, err: ErrExpired},
		{name: "RFC 6376 §3.5: x= not reached", opts: clock(23 * time.Hour), status: StatusPass},
		{name: "RFC 6376 §3.5: x= equal to t=", sig: func(_ *mutEnv, s *Signature) { s.Expiration = s.Timestamp }, status: StatusPermError, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: x= before t=", sig: func(_ *mutEnv, s *Signature) { s.Expiration = s.Timestamp.Add(-time.Second) }, status: StatusPermError, err: ErrSignatureSyntax},

		// Signature syntax: RFC 8601 §2.7.1 makes these neutral.
		{name: "RFC 6376 §3.5: v= missing", msg: dropTag("v"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: a= missing", msg: dropTag("a"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: b= missing", msg: dropTag("b"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: bh= missing", msg: dropTag("bh"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: d= missing", msg: dropTag("d"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: h= missing", msg: dropTag("h"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: s= missing", msg: dropTag("s"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.2: duplicate tag", msg: addTag("d=example.com"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: v=2", msg: setTag("v", "2"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: unknown c=", msg: setTag("c", "relaxed/loose"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: t= not a number", msg: setTag("t", "soon"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.5: bh= not base64", msg: setTag("bh", "!!!!"), status: StatusNeutral, err: ErrSignatureSyntax},
		{name: "RFC 6376 §3.2: tag list syntax", msg: addTag("no equals sign"), status: StatusNeutral, err: ErrSignatureSyntax},

		// l= (RFC 6376 §3.5, §8.2).
		{name: "RFC 6376 §3.5: l= equal to the body", sig: func(_ *mutEnv, s *Signature) { s.BodyLength = n }, status: StatusPass},
		{name: "RFC 6376 §8.2: l= shorter than the body, content appended", sig: func(_ *mutEnv, s *Signature) { s.BodyLength = n },
			msg: func(_ *mutEnv, s string) string { return s + "Click here: http://evil.example/\r\n" }, status: StatusPolicy, err: ErrPartialBody},
		{name: "RFC 6376 §8.2: l= shorter than the body", sig: func(_ *mutEnv, s *Signature) { s.BodyLength = n - 5 }, status: StatusPolicy, err: ErrPartialBody},
		{name: "RFC 6376 §8.2: l=0", sig: func(_ *mutEnv, s *Signature) { s.BodyLength = 0 }, status: StatusPolicy, err: ErrPartialBody},
		{name: "RFC 6376 §3.5: l= longer than the body", sig: func(_ *mutEnv, s *Signature) { s.BodyLength = n + 1 }, status: StatusFail, err: ErrBodyLength},
		{name: "RFC 6376 §3.5: l= shorter, signed part changed", sig: func(_ *mutEnv, s *Signature) { s.BodyLength = n - 5 },
			msg: replaceOnce("Hello Bob", "Hello Eve"), status: StatusFail, err: ErrBodyHash},

		// Limits and the message as a whole.
		{name: "more signatures than MaxSignatures", msg: func(_ *mutEnv, s string) string {
			field := s[:strings.Index(s, "\r\nFrom: ")+2]
			return field + field + s
		}, opts: func(o *VerifyOptions) { o.MaxSignatures = 2 }, n: 3, at: 2, status: StatusPermError, err: ErrTooManySigs},
		{name: "header larger than MaxHeaderBytes", opts: func(o *VerifyOptions) { o.MaxHeaderBytes = 256 }, fatal: ErrHeaderTooLarge},
		{name: "RFC 5322 §2.2: header line without colon", msg: replaceOnce("Subject:", "Not a header field\r\nSubject:"), fatal: ErrMalformedHeader},
		{name: "RFC 5322 §2.2: header starting with white space", msg: func(_ *mutEnv, s string) string { return " folded\r\n" + s }, fatal: ErrMalformedHeader},
		{name: "RFC 5322 §3.6.8: invalid field name", msg: replaceOnce("Subject:", "Bad Name: x\r\nSubject:"), fatal: ErrMalformedHeader},
	}
}

// TestVerifyMutations starts from one validly signed message (RSA 2048 and
// Ed25519, relaxed/relaxed), changes one thing per row and checks the exact
// status and error class. Each row is verified in one write and one byte at
// a time, which must agree.
func TestVerifyMutations(t *testing.T) {
	keys := loadFixedKeys(t)
	envs := []*mutEnv{
		{alg: "rsa", key: keys.rsa2048, record: record(t, keys.rsa2048.Public()), other: record(t, keys.ed.Public()), keys: keys},
		{alg: "ed", key: keys.ed, record: record(t, keys.ed.Public()), other: record(t, keys.rsa2048.Public()), keys: keys},
	}
	for _, e := range envs {
		signed := signMessage(t, mutMessage, &SignOptions{
			Keys:       []SignKey{{Domain: "example.com", Selector: e.alg, Signer: e.key}},
			Now:        clockAt(fixedNow),
			Expiration: 24 * time.Hour,
		})
		// baseSignature must describe the Signer's output, or the rows that
		// change it would change more than one thing.
		if got := handSign(t, e.key, e.baseSignature(), mutMessage); got != signed {
			t.Fatalf("%s: baseSignature differs from the Signer's:\n%q\n%q", e.alg, got, signed)
		}
		for _, m := range mutations(t) {
			if m.only != "" && m.only != e.alg {
				continue
			}
			t.Run(e.alg+"/"+m.name, func(t *testing.T) {
				msg := signed
				if m.sig != nil {
					s := e.baseSignature()
					m.sig(e, s)
					msg = handSign(t, e.key, s, mutMessage)
				}
				if m.msg != nil {
					msg = m.msg(e, msg)
				}
				opts := VerifyOptions{
					Now: clockAt(fixedNow.Add(time.Minute)),
					Resolver: ResolverFunc(func(_ context.Context, name string) ([]string, error) {
						if name != RecordName(e.alg, "example.com") {
							return nil, ErrKeyNotFound
						}
						if m.dns != nil {
							return m.dns(e)
						}
						return []string{e.record}, nil
					}),
				}
				if m.opts != nil {
					m.opts(&opts)
				}
				for _, how := range []struct {
					name string
					r    func(string) io.Reader
				}{
					{"one write", func(s string) io.Reader { return strings.NewReader(s) }},
					{"byte by byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
				} {
					res, err := Verify(context.Background(), how.r(msg), &opts)
					checkMutation(t, how.name, m, res, err)
				}
			})
		}
	}
}

func checkMutation(t *testing.T, how string, m mutation, res []Result, err error) {
	t.Helper()
	if m.fatal != nil {
		if !errors.Is(err, m.fatal) {
			t.Errorf("%s: Verify error %v, want %v", how, err, m.fatal)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: Verify: %v", how, err)
	}
	if want := max(m.n, 1); len(res) != want {
		t.Fatalf("%s: %d results, want %d", how, len(res), want)
	}
	for i, r := range res {
		if i != m.at {
			if r.Status != StatusPass {
				t.Errorf("%s: result %d: %s (%v), want pass", how, i, r.Status, r.Err)
			}
			continue
		}
		if r.Status != m.status {
			t.Errorf("%s: status %s (%v), want %s", how, r.Status, r.Err, m.status)
		}
		switch {
		case m.err == nil && r.Err != nil:
			t.Errorf("%s: error %v, want none", how, r.Err)
		case m.err != nil && !errors.Is(r.Err, m.err):
			t.Errorf("%s: error %v, want %v", how, r.Err, m.err)
		}
		if r.Status != StatusPass && r.Err == nil {
			t.Errorf("%s: status %s without an error", how, r.Status)
		}
		// RFC 8601 fields are 7-bit unless the message is SMTPUTF8.
		if ar := AuthenticationResults("mx.example.net", res); !isASCII(ar) {
			t.Errorf("%s: Authentication-Results is not ASCII: %q", how, ar)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
