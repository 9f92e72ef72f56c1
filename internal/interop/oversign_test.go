package interop

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/peertest"
)

// addedCase is a message dkimd signed with one oversigning choice, perhaps
// with a field added after signing, and whether a verifier must pass it.
type addedCase struct {
	name string
	msg  []byte
	pass bool
}

// addField puts line into the header of a signed message: on top (just
// under the signatures) or at the bottom.
func addField(signed []byte, line string, top bool) []byte {
	at := bytes.Index(signed, []byte("\r\n\r\n")) + 2
	if top {
		at = bytes.Index(signed, []byte("From: Alice"))
	}
	out := append([]byte{}, signed[:at]...)
	out = append(out, line+"\r\n"...)
	return append(out, signed[at:]...)
}

// TestPeersSeeAddedFields is the finding of issue 10, point 4, checked with
// the verifiers receivers run: with dkimd's default oversigning, a Subject,
// To, Date, Reply-To or Content-Type added after signing makes dkimpy and
// OpenDKIM fail the signature (RFC 6376 §8.15); with from-only, as before,
// only an added From does, and an added Subject still verifies.
func TestPeersSeeAddedFields(t *testing.T) {
	r := testKeys(t)
	msg := []byte(withType("text/plain; charset=us-ascii", "7bit") + "\r\n" + plainBody)
	added := []struct {
		line string
		top  bool
		// fromOnly is the verdict when only From is oversigned: a field
		// added at the bottom takes the place of the signed one (verifiers
		// pick bottom-up, RFC 6376 §5.4.2) and fails anyway; one added on
		// top, where a reader's client may show it, passes.
		fromOnly bool
	}{
		{"From: Mallory <m@evil.example>", true, false},
		{"Subject: Urgent: your invoice", true, true},
		{"To: victim@example.net", true, true},
		{"To: victim@example.net", false, false},
		{"Date: Tue, 02 Jan 2024 12:00:00 +0000", true, true},
		{"Reply-To: m@evil.example", true, true},
		{"Content-Type: text/html", true, true},
		{"Content-Type: text/html", false, false},
	}
	var cases []addedCase
	for _, choice := range []struct {
		name     string
		oversign []string
	}{
		{"default", nil},
		{"from-only", []string{"From"}},
	} {
		fields, err := dkim.Sign(bytes.NewReader(msg), &dkim.SignOptions{
			Keys:       []dkim.SignKey{{Domain: domain, Selector: "rsa2048", Signer: r.byName["rsa2048"]}},
			Oversign:   choice.oversign,
			Expiration: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		signed := peertest.Prepend(msg, fields...)
		cases = append(cases, addedCase{choice.name + "/as signed", signed, true})
		for _, a := range added {
			where := "at the bottom"
			if a.top {
				where = "on top"
			}
			pass := choice.oversign != nil && a.fromOnly
			cases = append(cases, addedCase{fmt.Sprintf("%s/%s added %s", choice.name, a.line[:bytes.IndexByte([]byte(a.line), ':')], where),
				addField(signed, a.line, a.top), pass})
		}
	}
	batch := make([][]byte, len(cases))
	for i, c := range cases {
		batch[i] = c.msg
	}
	check := func(t *testing.T, peer string, c addedCase, v peertest.Verdict) {
		t.Helper()
		if c.pass && !v.Pass() {
			t.Errorf("%s: %v; want pass", peer, v)
		}
		if !c.pass && !v.Failed() {
			t.Errorf("%s: %v; want fail", peer, v)
		}
	}
	t.Run("dkimd", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				res := dkimdVerify(t, c.msg, r.records)
				if len(res) != 1 || (res[0].Status == dkim.StatusPass) != c.pass {
					t.Errorf("dkimd: %s; want pass %t", describe(res), c.pass)
				}
			})
		}
	})
	t.Run("dkimpy", func(t *testing.T) {
		py := peertest.Dkimpy(t)
		verdicts := py.VerifyAll(batch, r.records)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) { check(t, "dkimpy "+py.Version, c, verdicts[i]) })
		}
	})
	t.Run("opendkim", func(t *testing.T) {
		od := peertest.OpenDKIM(t)
		verdicts := od.Verify(batch, r.records)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) { check(t, "OpenDKIM "+od.Version, c, verdicts[i]) })
		}
	})
}
