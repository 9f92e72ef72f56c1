package interop

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/peertest"
)

const domain = "example.com"

// keyring holds the keys of every test in the binary, made once: an RSA
// 4096 key alone takes about a second to generate.
type keyring struct {
	byName  map[string]crypto.Signer // by selector
	records map[string]string        // record name to TXT value
}

var (
	ringOnce sync.Once
	ring     *keyring
	ringErr  error
)

// keySpecs name each key by its selector.
var keySpecs = []struct {
	selector string
	spec     keys.Spec
}{
	{"rsa1024", keys.Spec{Algorithm: keys.RSA, Bits: 1024}},
	{"rsa2048", keys.Spec{Algorithm: keys.RSA, Bits: 2048}},
	{"rsa4096", keys.Spec{Algorithm: keys.RSA, Bits: 4096}},
	{"ed25519", keys.Spec{Algorithm: keys.Ed25519}},
}

func testKeys(t *testing.T) *keyring {
	t.Helper()
	ringOnce.Do(func() {
		r := &keyring{byName: map[string]crypto.Signer{}, records: map[string]string{}}
		signers := make([]crypto.Signer, len(keySpecs))
		errs := make([]error, len(keySpecs))
		var wg sync.WaitGroup
		for i, ks := range keySpecs {
			wg.Go(func() { signers[i], errs[i] = keys.Generate(nil, ks.spec) })
		}
		wg.Wait()
		for i, ks := range keySpecs {
			if errs[i] != nil {
				ringErr = errs[i]
				return
			}
			value, err := dkim.RecordValue(signers[i].Public())
			if err != nil {
				ringErr = err
				return
			}
			r.byName[ks.selector] = signers[i]
			r.records[dkim.RecordName(ks.selector, domain)] = value
		}
		ring = r
	})
	if ringErr != nil {
		t.Fatalf("generate keys: %v", ringErr)
	}
	return ring
}

// signKeys are the dkimd key sets: each key alone, and RSA with Ed25519 in
// one message as RFC 8463 §5 advises while receivers catch up.
func (r *keyring) signKeys() []struct {
	name string
	keys []dkim.SignKey
} {
	k := func(sel string) dkim.SignKey {
		return dkim.SignKey{Domain: domain, Selector: sel, Signer: r.byName[sel]}
	}
	return []struct {
		name string
		keys []dkim.SignKey
	}{
		{"rsa1024", []dkim.SignKey{k("rsa1024")}},
		{"rsa2048", []dkim.SignKey{k("rsa2048")}},
		{"rsa4096", []dkim.SignKey{k("rsa4096")}},
		{"ed25519", []dkim.SignKey{k("ed25519")}},
		{"dual", []dkim.SignKey{k("rsa2048"), k("ed25519")}},
	}
}

var canons = []struct{ header, body dkim.Canonicalization }{
	{dkim.Relaxed, dkim.Relaxed},
	{dkim.Simple, dkim.Simple},
}

// openDKIMQuirk says why OpenDKIM 2.11.0 and dkimd cannot agree on a row,
// or "" when they must; signing is OpenDKIM signing (else verifying). The
// first is an OpenDKIM bug, the second an artefact of its test mode, the
// rest are messages RFC 5322 does not allow (§2.3: CR and LF only together;
// §2.1: CRLF ends every line). On every one of them dkimd agrees with dkimpy,
// both ways.
func openDKIMQuirk(shape string, header, body dkim.Canonicalization, ed25519, signing bool) string {
	switch {
	case signing && ed25519 && header == dkim.Simple:
		return `OpenDKIM signs Ed25519 with simple header canonicalization over the DKIM-Signature field with "b=" on the line of "h=", ` +
			`then writes it folded before "b=": no verifier passes it, OpenDKIM included`
	case shape == "header-spacing" && header == dkim.Simple:
		return `OpenDKIM test mode rebuilds each header field as "Name: value", losing the spacing that simple header ` +
			`canonicalization keeps; a milter run sees the field as sent`
	case (shape == "no-final-crlf" || shape == "final-lone-cr") && body == dkim.Relaxed:
		return `OpenDKIM will not take a body without a final CRLF under relaxed body canonicalization: ` +
			`it refuses to sign ("CRLF at end of body missing") and says "message not signed" when verifying`
	case shape == "final-lone-cr":
		return `OpenDKIM hashes a body ending in a bare CR as if the CR began the missing CRLF ("end\r\n"); ` +
			`dkimd and dkimpy keep the CR as content ("end\r\r\n")`
	case shape == "lone-cr" && body == dkim.Relaxed:
		return `OpenDKIM drops bare CRs under relaxed body canonicalization ("a\rb \r c" hashes as "ab c"); ` +
			`dkimd and dkimpy keep them as content`
	}
	return ""
}

// resolver answers key lookups from the keyring, as the peers' lookups do.
func resolver(records map[string]string) dkim.Resolver {
	return dkim.ResolverFunc(func(_ context.Context, name string) ([]string, error) {
		if v, ok := records[strings.ToLower(strings.TrimSuffix(name, "."))]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("%w: %s", dkim.ErrKeyNotFound, name)
	})
}

func dkimdVerify(t *testing.T, msg []byte, records map[string]string) []dkim.Result {
	t.Helper()
	res, err := dkim.Verify(t.Context(), bytes.NewReader(msg), &dkim.VerifyOptions{Resolver: resolver(records)})
	if err != nil {
		t.Fatalf("dkimd verify: %v", err)
	}
	return res
}

func describe(res []dkim.Result) string {
	var parts []string
	for i := range res {
		parts = append(parts, fmt.Sprintf("s=%s %s (%s)", selectorOf(&res[i]), res[i].Status, res[i].Reason()))
	}
	return strings.Join(parts, "; ")
}

func selectorOf(r *dkim.Result) string {
	if r.Signature == nil {
		return "?"
	}
	return r.Signature.Selector
}

// signedCase is a message dkimd signed, with a tampered copy.
type signedCase struct {
	name      string
	shape     string
	header    dkim.Canonicalization
	body      dkim.Canonicalization
	selectors []string
	signed    []byte
	tampered  []byte
}

func (c signedCase) hasEd25519() bool {
	for _, s := range c.selectors {
		if s == "ed25519" {
			return true
		}
	}
	return false
}

// TestDkimdSignsPeersVerify signs every message shape with every key set and
// canonicalization, and has dkimd, dkimpy and OpenDKIM verify the result and
// a tampered copy.
func TestDkimdSignsPeersVerify(t *testing.T) {
	r := testKeys(t)
	var cases []signedCase
	for _, ks := range r.signKeys() {
		for _, c := range canons {
			for _, sh := range shapes() {
				fields, err := dkim.Sign(bytes.NewReader(sh.msg), &dkim.SignOptions{
					Keys: ks.keys, HeaderCanon: c.header, BodyCanon: c.body, Expiration: time.Hour,
				})
				if err != nil {
					t.Fatalf("%s %s/%s %s: sign: %v", ks.name, c.header, c.body, sh.name, err)
				}
				signed := peertest.Prepend(sh.msg, fields...)
				sc := signedCase{
					name:     fmt.Sprintf("%s/%s-%s/%s", ks.name, c.header, c.body, sh.name),
					shape:    sh.name,
					header:   c.header,
					body:     c.body,
					signed:   signed,
					tampered: tamper(signed),
				}
				for _, k := range ks.keys {
					sc.selectors = append(sc.selectors, k.Selector)
				}
				cases = append(cases, sc)
			}
		}
	}
	var batch [][]byte
	for _, c := range cases {
		batch = append(batch, c.signed, c.tampered)
	}

	t.Run("dkimd", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				res := dkimdVerify(t, c.signed, r.records)
				if len(res) != len(c.selectors) {
					t.Fatalf("%d results for %d signatures: %s", len(res), len(c.selectors), describe(res))
				}
				for _, x := range res {
					if x.Status != dkim.StatusPass {
						t.Errorf("own signature: %s", describe(res))
					}
				}
				for _, x := range dkimdVerify(t, c.tampered, r.records) {
					if x.Status != dkim.StatusFail || !errors.Is(x.Err, dkim.ErrBodyHash) {
						t.Errorf("tampered copy: s=%s %s (%v), want fail with a body hash mismatch", selectorOf(&x), x.Status, x.Err)
					}
				}
			})
		}
	})

	t.Run("dkimpy", func(t *testing.T) {
		py := peertest.Dkimpy(t)
		verdicts := py.VerifyAll(batch, r.records)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.hasEd25519() && !py.Ed25519 {
					peertest.Unavailable(t, "dkimpy %s lacks PyNaCl, so no ed25519-sha256: apt-get install python3-nacl", py.Version)
				}
				checkPeer(t, "dkimpy "+py.Version, c, verdicts[2*i], verdicts[2*i+1])
			})
		}
	})

	t.Run("opendkim", func(t *testing.T) {
		od := peertest.OpenDKIM(t)
		verdicts := od.Verify(batch, r.records)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.hasEd25519() && !od.Supports("ed25519-sha256") {
					t.Skipf("OpenDKIM %s has no ed25519-sha256 (it came with 2.11)", od.Version)
				}
				if why := openDKIMQuirk(c.shape, c.header, c.body, c.hasEd25519(), false); why != "" {
					t.Skipf("%s (OpenDKIM %s said: %v)", why, od.Version, verdicts[2*i])
				}
				checkPeer(t, "OpenDKIM "+od.Version, c, verdicts[2*i], verdicts[2*i+1])
			})
		}
	})
}

// checkPeer wants every signature of the signed message to pass and every
// signature of the tampered copy to fail.
func checkPeer(t *testing.T, peer string, c signedCase, signed, tampered peertest.Verdict) {
	t.Helper()
	if !signed.Pass() || len(signed.Sigs) != len(c.selectors) {
		t.Errorf("%s on dkimd's signature: %v; want %d passing", peer, signed, len(c.selectors))
	}
	for _, sel := range c.selectors {
		if _, ok := signed.BySelector(sel); !ok {
			t.Errorf("%s did not report s=%s: %v", peer, sel, signed)
		}
	}
	if !tampered.Failed() {
		t.Errorf("%s on the tampered copy: %v; want every signature to fail", peer, tampered)
	}
}

// peerSigned is a message a peer signed, for dkimd to verify.
type peerSigned struct {
	name     string
	selector string
	signed   []byte
	err      error
}

// TestPeersSignDkimdVerifies has dkimpy and OpenDKIM sign every message
// shape, and dkimd verify the result and a tampered copy.
func TestPeersSignDkimdVerifies(t *testing.T) {
	r := testKeys(t)

	t.Run("dkimpy", func(t *testing.T) {
		py := peertest.Dkimpy(t)
		sels := []string{"rsa2048"}
		if py.Ed25519 {
			sels = append(sels, "ed25519")
		} else {
			t.Run("ed25519", func(t *testing.T) {
				peertest.Unavailable(t, "dkimpy %s lacks PyNaCl, so no ed25519-sha256: apt-get install python3-nacl", py.Version)
			})
		}
		var cases []peerSigned
		var msgs [][]byte
		var opts []peertest.DkimpySign
		for _, sel := range sels {
			for _, canon := range []string{"relaxed/relaxed", "simple/simple", "relaxed/simple"} {
				for _, sh := range shapes() {
					cases = append(cases, peerSigned{name: sel + "/" + strings.ReplaceAll(canon, "/", "-") + "/" + sh.name, selector: sel})
					msgs = append(msgs, sh.msg)
					opts = append(opts, peertest.DkimpySign{Domain: domain, Selector: sel, Key: r.byName[sel], Canonicalization: canon})
				}
			}
		}
		signed, errs := py.SignAll(msgs, opts)
		for i := range cases {
			cases[i].signed, cases[i].err = signed[i], errs[i]
		}
		checkDkimd(t, cases, r.records)
	})

	t.Run("opendkim", func(t *testing.T) {
		od := peertest.OpenDKIM(t)
		var cases []peerSigned
		for _, sel := range []string{"rsa2048", "ed25519"} {
			for _, c := range canons {
				for _, sh := range shapes() {
					pc := peerSigned{name: fmt.Sprintf("%s/%s-%s/%s", sel, c.header, c.body, sh.name), selector: sel}
					if sel == "ed25519" && !od.Supports("ed25519-sha256") {
						pc.err = errSkip(fmt.Sprintf("OpenDKIM %s has no ed25519-sha256", od.Version))
					} else if why := openDKIMQuirk(sh.name, c.header, c.body, sel == "ed25519", true); why != "" {
						pc.err = errSkip(why + " (OpenDKIM " + od.Version + ")")
					} else {
						pc.signed, pc.err = od.Sign(sh.msg, peertest.OpenDKIMSign{
							Domain: domain, Selector: sel, Key: r.byName[sel],
							Canonicalization: string(c.header) + "/" + string(c.body),
						})
					}
					cases = append(cases, pc)
				}
			}
		}
		checkDkimd(t, cases, r.records)
	})
}

// errSkip marks a row a peer cannot sign, with the reason.
type errSkip string

func (e errSkip) Error() string { return string(e) }

// checkDkimd wants dkimd to pass each peer-signed message and fail its
// tampered copy with a body hash mismatch.
func checkDkimd(t *testing.T, cases []peerSigned, records map[string]string) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var skip errSkip
			if errors.As(c.err, &skip) {
				t.Skip(string(skip))
			}
			if c.err != nil {
				t.Fatalf("peer did not sign: %v", c.err)
			}
			res := dkimdVerify(t, c.signed, records)
			if len(res) != 1 || res[0].Status != dkim.StatusPass || selectorOf(&res[0]) != c.selector {
				t.Errorf("dkimd on the peer's signature: %s; want s=%s pass\n%s", describe(res), c.selector, head(c.signed))
			}
			res = dkimdVerify(t, tamper(c.signed), records)
			if len(res) != 1 || res[0].Status != dkim.StatusFail || !errors.Is(res[0].Err, dkim.ErrBodyHash) {
				t.Errorf("dkimd on the tampered copy: %s; want fail with a body hash mismatch", describe(res))
			}
		})
	}
}

// TestRSASHA1Refused has the peers sign with rsa-sha1, which they still
// accept, and wants dkimd to refuse it (RFC 8301 §3.1).
func TestRSASHA1Refused(t *testing.T) {
	r := testKeys(t)
	msg := shapes()[0].msg
	check := func(t *testing.T, signed []byte, peerVerdict peertest.Verdict) {
		t.Helper()
		if !peerVerdict.Pass() {
			t.Fatalf("the peer does not pass its own rsa-sha1 signature: %v", peerVerdict)
		}
		res := dkimdVerify(t, signed, r.records)
		if len(res) != 1 || res[0].Status != dkim.StatusPermError || !errors.Is(res[0].Err, dkim.ErrAlgorithm) {
			t.Errorf("dkimd on rsa-sha1: %s; want permerror, algorithm not accepted", describe(res))
		}
	}
	t.Run("dkimpy", func(t *testing.T) {
		py := peertest.Dkimpy(t)
		signed, err := py.Sign(msg, peertest.DkimpySign{Domain: domain, Selector: "rsa2048", Key: r.byName["rsa2048"], Algorithm: "rsa-sha1"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, signed, py.Verify(signed, r.records))
	})
	t.Run("opendkim", func(t *testing.T) {
		od := peertest.OpenDKIM(t)
		if !od.Supports("rsa-sha1") {
			t.Skipf("OpenDKIM %s cannot sign rsa-sha1", od.Version)
		}
		signed, err := od.Sign(msg, peertest.OpenDKIMSign{Domain: domain, Selector: "rsa2048", Key: r.byName["rsa2048"], Algorithm: "rsa-sha1"})
		if err != nil {
			t.Fatal(err)
		}
		check(t, signed, od.Verify([][]byte{signed}, r.records)[0])
	})
}

// head is the header of a message, for failure output without a long body.
func head(msg []byte) string {
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return string(msg[:i])
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return string(msg[:i])
	}
	return string(msg)
}

// TestDkimpyBodyLength has dkimpy sign with l= and wants dkimd to pass the
// message as signed, and to call it policy, not pass, once a footer is added
// after the signed length (RFC 6376 §8.2).
func TestDkimpyBodyLength(t *testing.T) {
	r := testKeys(t)
	py := peertest.Dkimpy(t)
	opts := peertest.DkimpySign{Domain: domain, Selector: "rsa2048", Key: r.byName["rsa2048"], Canonicalization: "relaxed/relaxed", Length: true}
	signed, err := py.Sign(shapes()[0].msg, opts)
	if err != nil {
		t.Fatal(err)
	}
	res := dkimdVerify(t, signed, r.records)
	if len(res) != 1 || res[0].Status != dkim.StatusPass || res[0].Signature.BodyLength < 0 {
		t.Errorf("dkimd on dkimpy's l= signature: %s; want pass with l=", describe(res))
	}
	footer := append(bytes.Clone(signed), "--\r\nadded by a mailing list\r\n"...)
	res = dkimdVerify(t, footer, r.records)
	if len(res) != 1 || res[0].Status != dkim.StatusPolicy || !errors.Is(res[0].Err, dkim.ErrPartialBody) {
		t.Errorf("dkimd with a footer after l=: %s; want policy, partial body", describe(res))
	}
	if v := py.Verify(footer, r.records); !v.Pass() {
		t.Errorf("dkimpy should still pass the footer (it honours l=): %v", v)
	}
}
