package dnscheck

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestFindStrays starts from a clean record and adds one kind of stray
// character per row.
func TestFindStrays(t *testing.T) {
	const clean = "v=DKIM1; k=rsa; p=MIIBIjAN BgkqhkiG9w0B\tAQEFAAOC"
	for _, tc := range []struct {
		name, value string
		want        []string // the text of each stray, in order
		cleaned     string   // cleanStrays' result; "" means clean
	}{
		{"clean, with FWS in p= (RFC 6376 §3.6.1)", clean, nil, clean},
		{"zone-file quotes", `"v=DKIM1; k=rsa; " "p=MIIBIjAN BgkqhkiG9w0B` + "\t" + `AQEFAAOC"`, []string{`"`, `"`, `"`, `"`}, "v=DKIM1; k=rsa;  p=MIIBIjAN BgkqhkiG9w0B\tAQEFAAOC"},
		{"dig escapes", `v=DKIM1\; k=rsa\; p=MIIBIjAN BgkqhkiG9w0B` + "\tAQEFAAOC", []string{`\;`, `\;`}, ""},
		{"escaped quotes", `\"v=DKIM1; k=rsa; p=MIIBIjAN BgkqhkiG9w0B` + "\tAQEFAAOC" + `\"`, []string{`\"`, `\"`}, ""},
		{"decimal escape", `v=DKIM1;\032k=rsa; p=MIIBIjAN BgkqhkiG9w0B` + "\tAQEFAAOC", []string{`\0`}, ""},
		{"parentheses", "( " + clean + " )", []string{"(", ")"}, " " + clean + " "},
		{"no-break space", strings.Replace(clean, "; k", ";\u00a0k", 1), []string{"U+00A0"}, strings.Replace(clean, "; k", ";k", 1)},
		{"zero-width space", strings.Replace(clean, "BgkqhkiG", "Bgkq\u200bhkiG", 1), []string{"U+200B"}, strings.Replace(clean, "BgkqhkiG", "BgkqhkiG", 1)},
		{"curly quotes", "“" + clean + "”", []string{"U+201C", "U+201D"}, clean},
		{"control character", strings.Replace(clean, "k=rsa", "k=rsa\x00", 1), []string{"U+0000"}, clean},
		{"invalid UTF-8", clean + "\xff", []string{"byte 0xFF"}, clean},
		{"non-ASCII letter", strings.Replace(clean, "rsa", "rså", 1), []string{"U+00E5"}, strings.Replace(clean, "rsa", "rs", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range findStrays(tc.value) {
				got = append(got, s.text)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("strays %q, want %q", got, tc.want)
			}
			want := tc.cleaned
			if want == "" {
				want = clean
			}
			if c := cleanStrays(tc.value); c != want {
				t.Errorf("cleaned %q, want %q", c, want)
			}
		})
	}
}

func TestDescribeStrays(t *testing.T) {
	v := `"v=DKIM1\; k=rsa; " "p=abc"`
	got := describeStrays(v, findStrays(v))
	want := `4 × quote character (") (first " at character 1), 1 × backslash (\) (\; at character 9)`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// FuzzStrays checks that finding stray characters never panics, reports
// them in order inside the value, and that the cleaned value has none left.
func FuzzStrays(f *testing.F) {
	for _, s := range []string{
		"v=DKIM1; k=rsa; p=MIIB",
		`"v=DKIM1; k=rsa; " "p=MIIB"`,
		`v=DKIM1\; p=\065\`,
		"v=DKIM1;\u00a0p=“x”\xff\x00(",
		`\\\"\999\25`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ss := findStrays(v)
		last := -1
		for _, s := range ss {
			if s.pos <= last || s.pos >= len(v) || s.text == "" {
				t.Fatalf("stray %+v after offset %d in %q", s, last, v)
			}
			last = s.pos
		}
		if len(ss) == 0 && cleanStrays(v) != v && utf8.ValidString(v) {
			t.Fatalf("no strays but cleaned %q to %q", v, cleanStrays(v))
		}
		c := cleanStrays(v)
		if left := findStrays(c); len(left) > 0 {
			t.Fatalf("cleaned %q to %q, which still has %+v", v, c, left)
		}
		_ = describeStrays(v, ss)
	})
}

// FuzzJudge feeds arbitrary record values to the diagnosis: it must not
// panic and must name a status that a record can have.
func FuzzJudge(f *testing.F) {
	k := loadKeys(f)
	good := value(f, k.rsa)
	for _, s := range []string{good, good[:255], "v=DKIM1; p=", `"` + good + `"`, "v=DKIM1; k=ed25519; p=" + pOf(f, k.rsa), "p=" + k.rsa512} {
		f.Add(s)
	}
	e, err := newExpectation(&Options{PublicKey: k.rsa}, testName)
	if err != nil {
		f.Fatal(err)
	}
	valid := map[Status]bool{
		StatusMatch: true, StatusRevoked: true, StatusNotFound: true, StatusWrongKey: true, StatusTruncated: true,
		StatusStrayCharacters: true, StatusBadTags: true, StatusWeakKey: true,
	}
	f.Fuzz(func(t *testing.T, v string) {
		fd := e.diagnose([]TXTRecord{{Value: v, Strings: []string{v}}}, false, testName)
		if !valid[fd.status] {
			t.Fatalf("status %q for %q", fd.status, v)
		}
		if !fd.status.good(ExpectKey) && fd.status != StatusNotFound && len(fd.advice) == 0 {
			t.Fatalf("%s without advice for %q", fd.status, v)
		}
	})
}
