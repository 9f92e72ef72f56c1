package dkim

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// loadRFC6376Examples reads testdata/rfc6376/examples.txt (RFC 6376
// §3.4.5, see the README there), decoding the RFC's notation: real white
// space is for clarity only, <SP>, <HTAB> and <CRLF> are the bytes.
func loadRFC6376Examples(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc6376/examples.txt")
	if err != nil {
		t.Fatal(err)
	}
	decode := strings.NewReplacer(" ", "", "\t", "", "\r", "", "\n", "")
	tokens := strings.NewReplacer("<SP>", " ", "<HTAB>", "\t", "<CRLF>", "\r\n")
	sections := map[string]string{}
	for _, sec := range strings.Split(string(b), "== ")[1:] {
		name, text, _ := strings.Cut(sec, "\n")
		sections[strings.TrimSpace(name)] = tokens.Replace(decode.Replace(text))
	}
	return sections
}

// TestRFC6376CanonExamples checks the two examples of RFC 6376 §3.4.5
// through the real header and body canonicalizers.
func TestRFC6376CanonExamples(t *testing.T) {
	ex := loadRFC6376Examples(t)
	// Guard the decoding of the RFC notation with the bytes it must give.
	const message = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"
	if ex["message"] != message {
		t.Fatalf("decoded message %q, want %q", ex["message"], message)
	}
	header, body, _ := strings.Cut(message, "\r\n\r\n")
	fields, err := parseHeader([]byte(header + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) != 2 {
		t.Fatalf("%d header fields, want 2", len(fields))
	}
	for _, tc := range []struct {
		name  string
		canon Canonicalization
	}{
		{"RFC 6376 §3.4.5 example 1 (relaxed)", Relaxed},
		{"RFC 6376 §3.4.5 example 2 (simple)", Simple},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []byte
			for _, f := range fields {
				h = append(h, canonicalHeader(tc.canon, f.raw)...)
			}
			if want := ex[string(tc.canon)+" header"]; string(h) != want {
				t.Errorf("header %q, want %q", h, want)
			}
			want := ex[string(tc.canon)+" body"]
			if got := canonBody(t, tc.canon, []byte(body)); string(got) != want {
				t.Errorf("body %q, want %q", got, want)
			}
			for i := 0; i <= len(body); i++ {
				for _, path := range canonPaths {
					if got := canonChunks(t, tc.canon, []byte(body), []int{i}, path.fast); string(got) != want {
						t.Errorf("%s: body split at %d: %q, want %q", path.name, i, got, want)
					}
				}
			}
		})
	}
	// relaxedHeader is what canonicalHeader(Relaxed) uses; check it alone.
	if got := string(relaxedHeader(fields[1].raw)); got != "b:Y Z\r\n" {
		t.Errorf("relaxedHeader(%q) = %q, want %q", fields[1].raw, got, "b:Y Z\r\n")
	}
}

// TestRelaxedHeader changes one thing per row of a header field and checks
// relaxed canonicalization (RFC 6376 §3.4.2).
func TestRelaxedHeader(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"valid", "Subject: Hello world\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 a: name lower-cased", "SUBJECT: Hello world\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 b: folded value unfolded", "Subject: Hello\r\n world\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 b: folded with bare LF", "Subject: Hello\n\tworld\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 c: WSP run reduced", "Subject: Hello \t  world\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 d: trailing WSP removed", "Subject: Hello world \t\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 d: trailing WSP of a folded line", "Subject: Hello world\r\n \t\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 e: WSP before colon removed", "Subject \t: Hello world\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 e: WSP after colon removed", "Subject:\t  Hello world\r\n", "subject:Hello world\r\n"},
		{"§3.4.2 e: value starting on a folded line", "Subject:\r\n Hello world\r\n", "subject:Hello world\r\n"},
		{"empty value", "Subject:\r\n", "subject:\r\n"},
		{"empty value with WSP", "Subject: \t \r\n", "subject:\r\n"},
		{"colon inside value kept", "Subject: a: b\r\n", "subject:a: b\r\n"},
		{"8-bit value kept", "Subject: caf\xe9\r\n", "subject:caf\xe9\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(relaxedHeader([]byte(tc.raw))); got != tc.want {
				t.Errorf("relaxedHeader(%q) = %q, want %q", tc.raw, got, tc.want)
			}
			if got := string(canonicalHeader(Simple, []byte(tc.raw))); got != tc.raw {
				t.Errorf("simple: %q, want it unchanged", got)
			}
		})
	}
}

// bodyCanonCases are the tricky bodies of the body canonicalization tests,
// also the seed corpus of FuzzBodyCanon.
var bodyCanonCases = []struct{ name, body string }{
	{"text", "Hello\r\nworld\r\n"},
	{"empty", ""},
	{"one CRLF", "\r\n"},
	{"only CRLFs", "\r\n\r\n\r\n"},
	{"only bare LFs", "\n\n\n"},
	{"no final CRLF", "Hello\r\nworld"},
	{"trailing empty lines", "a\r\n\r\n\r\n"},
	{"empty lines inside", "a\r\n\r\n\r\nb\r\n"},
	{"leading empty lines", "\r\n\r\na\r\n"},
	{"trailing SP", "a  \r\nb \r\n"},
	{"trailing HTAB", "a\t\r\nb\t \t\r\n"},
	{"inner WSP runs", "a  b\t\tc \t d\r\n"},
	{"single HTAB inside", "a\tb\r\n"},
	{"leading WSP", "  a\r\n\tb\r\n"},
	{"WSP-only lines", "a\r\n \t \r\n\r\n  \r\nb\r\n"},
	{"WSP-only lines at end", "a\r\n  \r\n\t\r\n"},
	{"trailing WSP, no final CRLF", "a \t "},
	{"only WSP", "   "},
	{"lone CR inside", "a\rb\r\n"},
	{"lone CR at end", "abc\r"},
	{"only CR", "\r"},
	{"CR CR LF", "a\r\r\n"},
	{"WSP before lone CR", "a \rb\r\n"},
	{"WSP before lone CR at end", "a \t\r"},
	{"WSP after lone CR", "a\r \r\n"},
	{"bare LF", "a\nb\n"},
	{"mixed LF and CRLF", "a\r\nb\nc\r\n\n\r\n"},
	{"LF CR", "a\n\rb\r\n"},
	{"8-bit, not UTF-8", "caf\xe9 \xff\xfe\r\n\x80 \x81\r\n"},
	{"NUL bytes", "\x00 \x00\r\n"},
	{"long line", strings.Repeat("x", 100000) + "\r\n"},
	{"long WSP run", "a" + strings.Repeat(" ", 70000) + "b\r\n"},
	{"long trailing WSP", "a" + strings.Repeat("\t", 70000) + "\r\n"},
	{"many empty lines then end", "a" + strings.Repeat("\r\n", 50000)},
	{"many empty lines then text", strings.Repeat("\r\n", 40000) + "a"},
	{"many lines", strings.Repeat("line  of\ttext \r\n", 5000)},
	{"many clean lines", strings.Repeat("a clean line of text\r\n", 5000)},
	{"indented lines", strings.Repeat("      <td>\r\n        x  y\t\r\n", 20)},
	{"clean lines, then each problem", strings.Repeat("a clean line of text\r\n", 3) +
		"a  b\r\nc\td\r\ne \r\nf\ng\rh\r\n\r\n \r\n\r\n"},
}

// fastPathCases are bodies for the fast path of the body canonicalizer
// (bodyCanon.passClean): each problem it stops at comes after a clean
// stretch long enough (over 32 bytes) for the vectorised scan to find it,
// with the canonical forms written out by hand.
var fastPathCases = []struct{ name, body, simple, relaxed string }{
	{"clean text passes unchanged",
		cl + cl + "end\r\n", cl + cl + "end\r\n", cl + cl + "end\r\n"},
	{"empty lines inside kept (§3.4.3, §3.4.4)",
		cl + "\r\n\r\n" + cl, cl + "\r\n\r\n" + cl, cl + "\r\n\r\n" + cl},
	{"trailing empty lines removed (§3.4.3, §3.4.4 c)",
		cl + cl + "\r\n\r\n\r\n", cl + cl, cl + cl},
	{"§3.4.4 a: WSP run inside a line becomes one SP",
		cl + "a  b\t\tc \td\te\r\n", cl + "a  b\t\tc \td\te\r\n", cl + "a b c d e\r\n"},
	{"§3.4.4 a: indented lines (HTML)",
		cl + "    <td>\r\n\t\t<p>x</p>\r\n  \t  y\r\n", cl + "    <td>\r\n\t\t<p>x</p>\r\n  \t  y\r\n", cl + " <td>\r\n <p>x</p>\r\n y\r\n"},
	{"§3.4.4 b: WSP at line end removed",
		cl + "a \r\nb  \r\nc\t\r\nd \t \r\n", cl + "a \r\nb  \r\nc\t\r\nd \t \r\n", cl + "a\r\nb\r\nc\r\nd\r\n"},
	{"§3.4.4 b, c: WSP-only lines at the end are empty lines, removed",
		cl + "  \r\n\t\r\n \r\n", cl + "  \r\n\t\r\n \r\n", cl},
	{"WSP-only line inside is an empty line",
		cl + " \t \r\nx\r\n", cl + " \t \r\nx\r\n", cl + "\r\nx\r\n"},
	{"WSP at the end of the body, no CRLF",
		cl + "last  ", cl + "last  \r\n", cl + "last\r\n"},
	{"bare LF is a line end",
		cl + "a\nb\r\n \n\n", cl + "a\r\nb\r\n \r\n", cl + "a\r\nb\r\n"},
	{"SP before a bare LF is trailing",
		cl + "a \nb\t\nc\r\n", cl + "a \r\nb\t\r\nc\r\n", cl + "a\r\nb\r\nc\r\n"},
	{"lone CR is content, WSP before it kept",
		cl + "a\rb \rc  \r\r\n", cl + "a\rb \rc  \r\r\n", cl + "a\rb \rc \r\r\n"},
	{"CR LF LF: an empty line with a bare LF",
		cl + "a\r\n\nb\r\n", cl + "a\r\n\r\nb\r\n", cl + "a\r\n\r\nb\r\n"},
	{"lone CR ends the body",
		cl + "a\r", cl + "a\r\r\n", cl + "a\r\r\n"},
	{"only empty and WSP lines",
		strings.Repeat("\r\n", 20) + strings.Repeat("  \r\n", 10), strings.Repeat("\r\n", 20) + strings.Repeat("  \r\n", 10), ""},
}

// cl is a clean line of 41 bytes: longer than one step of the vectorised
// scan.
const cl = "a line canonicalization does not change\r\n"

// TestBodyCanonFastPath checks the fast path against hand-written canonical
// forms, in one write and cut at every point (between CR and LF, inside the
// white-space runs and inside the trailing empty lines), and the line-by-line
// path alike.
func TestBodyCanonFastPath(t *testing.T) {
	for _, tc := range fastPathCases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			for _, c := range []struct {
				canon Canonicalization
				want  string
			}{{Simple, tc.simple}, {Relaxed, tc.relaxed}} {
				want := c.want
				if want == "" && c.canon == Simple {
					want = "\r\n"
				}
				if ref := string(refBodyCanon(c.canon, body)); ref != want {
					t.Fatalf("%s: the reference gives %q, the table %q", c.canon, ref, want)
				}
				for _, path := range canonPaths {
					for i := 0; i <= len(body); i++ {
						if got := string(canonChunks(t, c.canon, body, []int{i}, path.fast)); got != want {
							t.Errorf("%s, %s, cut at %d: %q, want %q", c.canon, path.name, i, got, want)
						}
					}
				}
			}
		})
	}
}

// TestPairScan compares pairScan, vectorised where fastScan holds, with
// pairProblem tried at every pair: the first problem, and all of them one
// after the other as passClean asks, on random bytes drawn mostly from the
// ones it looks for, at every length up to 300 and many alignments.
func TestPairScan(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "abc \t\r\n\x00\x80\x0c\x0b\x8d\x8a"
	buf := make([]byte, 400)
	for n := range 300 {
		for range 30 {
			off := r.IntN(64)
			p := buf[off : off+n]
			// Mostly clean text with rare specials, or dense specials.
			rare := []int{2, 40, 200}[r.IntN(3)]
			for i := range p {
				if r.IntN(rare) == 0 {
					p[i] = alphabet[r.IntN(len(alphabet))]
				} else {
					p[i] = "abcdefgh"[r.IntN(8)]
				}
			}
			for _, relaxed := range []bool{false, true} {
				var want []int
				for i := 0; i+1 < n; i++ {
					if pairProblem(p[i], p[i+1], relaxed) {
						want = append(want, i)
					}
				}
				// Steps of one or two bytes past each problem, as passClean
				// goes on after a problem or after a run of white space.
				s := pairScan{p: p, relaxed: relaxed}
				for from := 0; ; {
					exp := max(n-1, from)
					if j, ok := slices.BinarySearch(want, from); ok || j < len(want) {
						exp = want[j]
					}
					if got := s.next(from); got != exp {
						t.Fatalf("relaxed %v, %q: next(%d) = %d, want %d (problems at %v)", relaxed, p, from, got, exp, want)
					}
					if exp+1 >= n {
						break
					}
					from = exp + 1 + r.IntN(2)
				}
			}
		}
	}
}

// firstOf is the answer of pairScan.next(0) for the problems want of a
// length-n input.
func firstOf(want []int, n int) int {
	if len(want) > 0 {
		return want[0]
	}
	return max(n-1, 0)
}

// TestPairProblem pins the pairs that stop the fast path (RFC 6376 §3.4.3,
// §3.4.4).
func TestPairProblem(t *testing.T) {
	for _, tc := range []struct {
		pair            string
		simple, relaxed bool
	}{
		{"ab", false, false},
		{"\r\n", false, false},
		{"\n\r", false, false},
		{"a ", false, false},
		{" a", false, false},
		{"\ra", true, true},   // lone CR
		{"\r\r", true, true},  // lone CR
		{"a\n", true, true},   // bare LF
		{"\n\n", true, true},  // bare LF
		{"  ", false, true},   // §3.4.4 a: a run to reduce
		{"\ta", false, true},  // §3.4.4 a: HTAB becomes SP
		{" \t", false, false}, // the HTAB is the next pair's problem
		{" \r", false, true},  // §3.4.4 b: maybe trailing
		{" \n", true, true},   // bare LF, after a SP
	} {
		a, b := tc.pair[0], tc.pair[1]
		if got := pairProblem(a, b, false); got != tc.simple {
			t.Errorf("simple %q: %v, want %v", tc.pair, got, tc.simple)
		}
		if got := pairProblem(a, b, true); got != tc.relaxed {
			t.Errorf("relaxed %q: %v, want %v", tc.pair, got, tc.relaxed)
		}
	}
}

// refBodyCanon is RFC 6376 §3.4.3 and §3.4.4 written the obvious way, on a
// whole body: lines end at LF (with the CR before it, if any: bare LF counts
// as CRLF), a CR elsewhere is content; relaxed reduces each white-space run
// to one SP and drops it at the end of a line; trailing empty lines go; a
// last line without CRLF gets one; an empty body is CRLF (simple) or
// nothing (relaxed).
func refBodyCanon(c Canonicalization, body []byte) []byte {
	var lines [][]byte
	parts := bytes.Split(body, []byte("\n"))
	for i, p := range parts {
		if i < len(parts)-1 {
			p = bytes.TrimSuffix(p, []byte("\r"))
		} else if len(p) == 0 {
			break // the body ended with a line end, or is empty
		}
		if c == Relaxed {
			var l []byte
			wsp := false
			for _, b := range p {
				if b == ' ' || b == '\t' {
					wsp = true
					continue
				}
				if wsp {
					l = append(l, ' ')
					wsp = false
				}
				l = append(l, b)
			}
			p = l // white space still pending here was at the end of the line
		}
		lines = append(lines, p)
	}
	for len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 && c == Simple {
		return []byte("\r\n")
	}
	var out []byte
	for _, l := range lines {
		out = append(append(out, l...), "\r\n"...)
	}
	return out
}

// TestRefBodyCanon pins the reference implementation itself to hand-checked
// outputs, so that it cannot drift along with the code it checks.
func TestRefBodyCanon(t *testing.T) {
	for _, tc := range []struct{ body, simple, relaxed string }{
		{"", "\r\n", ""},
		{"\r\n\r\n", "\r\n", ""},
		{"a", "a\r\n", "a\r\n"},
		{" a  b\t \r\n\r\n", " a  b\t \r\n", " a b\r\n"},
		{"a \rb\n", "a \rb\r\n", "a \rb\r\n"},
		{"a\r", "a\r\r\n", "a\r\r\n"},
		{"  \r\nx", "  \r\nx\r\n", "\r\nx\r\n"},
		{"a  \t", "a  \t\r\n", "a\r\n"},
	} {
		if got := string(refBodyCanon(Simple, []byte(tc.body))); got != tc.simple {
			t.Errorf("simple %q: %q, want %q", tc.body, got, tc.simple)
		}
		if got := string(refBodyCanon(Relaxed, []byte(tc.body))); got != tc.relaxed {
			t.Errorf("relaxed %q: %q, want %q", tc.body, got, tc.relaxed)
		}
	}
}

// canonPaths are the two ways bodyCanon.Write can go: the fast path (on by
// default where fastScan holds; it works with the portable scanner too, so
// it is tested everywhere) and writeLines alone (the path elsewhere).
var canonPaths = []struct {
	name string
	fast bool
}{{"fast", true}, {"lines", false}}

// canonChunks runs body through the body canonicalizer, cut at the given
// ascending offsets into separate writes, with the fast path on or off.
func canonChunks(t testing.TB, c Canonicalization, body []byte, cuts []int, fast bool) []byte {
	t.Helper()
	var out bytes.Buffer
	bc := newBodyCanon(c, &out)
	bc.fast = fast
	prev := 0
	for _, cut := range append(cuts, len(body)) {
		if n, err := bc.Write(body[prev:cut]); err != nil || n != cut-prev {
			t.Fatalf("Write: %d, %v", n, err)
		}
		prev = cut
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// randomCuts returns up to n ascending cut offsets in [0, size].
func randomCuts(r *rand.Rand, size, n int) []int {
	cuts := make([]int, 0, n)
	for range n {
		cuts = append(cuts, r.IntN(size+1))
	}
	for i := 1; i < len(cuts); i++ { // insertion sort: n is small
		for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	return cuts
}

// TestBodyCanonReference checks the canonicalizer against refBodyCanon on
// every table body, in one write, on both paths.
func TestBodyCanonReference(t *testing.T) {
	for _, tc := range bodyCanonCases {
		for _, c := range []Canonicalization{Simple, Relaxed} {
			want := refBodyCanon(c, []byte(tc.body))
			if got := canonBody(t, c, []byte(tc.body)); !bytes.Equal(got, want) {
				t.Errorf("%s, %s: got %q, want %q", tc.name, c, clipQ(got), clipQ(want))
			}
			for _, path := range canonPaths {
				if got := canonChunks(t, c, []byte(tc.body), nil, path.fast); !bytes.Equal(got, want) {
					t.Errorf("%s, %s, %s: got %q, want %q", tc.name, c, path.name, clipQ(got), clipQ(want))
				}
			}
		}
	}
}

// TestBodyCanonChunking: the output must not depend on how the body is cut
// into writes: one byte at a time, at every single point (so between every
// CR and LF and inside every white-space run), and at random points; nor on
// the path taken.
func TestBodyCanonChunking(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range bodyCanonCases {
		body := []byte(tc.body)
		for _, c := range []Canonicalization{Simple, Relaxed} {
			want := refBodyCanon(c, body)
			for _, path := range canonPaths {
				check := func(how string, cuts []int) {
					t.Helper()
					if got := canonChunks(t, c, body, cuts, path.fast); !bytes.Equal(got, want) {
						t.Errorf("%s, %s, %s, %s: got %q, want %q", tc.name, c, path.name, how, clipQ(got), clipQ(want))
					}
				}
				ones := make([]int, 0, len(body))
				for i := 1; i < len(body); i++ {
					ones = append(ones, i)
				}
				check("one byte per write", ones)
				if len(body) <= 512 {
					for i := 0; i <= len(body); i++ {
						check("cut at "+itoa(i), []int{i})
					}
				} else {
					// Cut near the start, around the canonicalizer's buffer
					// size and near the end.
					for _, base := range []int{0, canonBufSize - 4, canonBufSize/2 - 4, len(body) - 8} {
						for i := base; i < base+8 && i <= len(body); i++ {
							check("cut at "+itoa(i), []int{i})
						}
					}
				}
				for range 20 {
					cuts := randomCuts(r, len(body), 1+r.IntN(8))
					check("cuts at "+itoas(cuts), cuts)
				}
			}
		}
	}
}

// TestBodyCanonMsgauth compares body hashes with go-msgauth, the independent
// implementation kept as an oracle: it signs the CRLF form of each body
// (go-msgauth fixes bare LF itself, but the conversion keeps it out of the
// comparison), and its bh= must equal the hash of our canonical form of the
// body as given, and the bh= of our Signer.
func TestBodyCanonMsgauth(t *testing.T) {
	key := loadFixedKeys(t).ed
	for _, tc := range bodyCanonCases {
		for _, c := range []Canonicalization{Simple, Relaxed} {
			body := toCRLF(tc.body)
			if c == Relaxed && hasLoneCR(body) {
				// go-msgauth's relaxed body canonicalizer takes a CR not
				// followed by LF as part of a line break and drops the
				// white space before it. RFC 6376 §3.4.4 sees such a CR as
				// line content; TestBodyCanonReference covers these rows.
				continue
			}
			ours := sha256.Sum256(canonBody(t, c, []byte(tc.body)))
			theirs := msgauthBodyHash(t, key, c, body)
			if !bytes.Equal(ours[:], theirs) {
				t.Errorf("%s, %s: bh=%s, go-msgauth bh=%s", tc.name, c, b64(ours[:]), b64(theirs))
			}
			signed := signMessage(t, "From: a@example.com\r\n\r\n"+tc.body, &SignOptions{
				Keys:      []SignKey{{Domain: "example.com", Selector: "ed", Signer: key}},
				BodyCanon: c,
			})
			if s := firstSignature(t, signed); !bytes.Equal(s.BodyHash, theirs) {
				t.Errorf("%s, %s: Sign bh=%s, go-msgauth bh=%s", tc.name, c, b64(s.BodyHash), b64(theirs))
			}
		}
	}
}

// msgauthBodyHash signs body with go-msgauth and returns its bh=.
func msgauthBodyHash(t *testing.T, key crypto.Signer, c Canonicalization, body string) []byte {
	t.Helper()
	var out bytes.Buffer
	err := msgauth.Sign(&out, strings.NewReader("From: a@example.com\r\n\r\n"+body), &msgauth.SignOptions{
		Domain:                 "example.com",
		Selector:               "ed",
		Signer:                 key,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
		BodyCanonicalization:   msgauth.Canonicalization(c),
		HeaderKeys:             []string{"From"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return firstSignature(t, out.String()).BodyHash
}

// firstSignature parses the DKIM-Signature field on top of a message.
func firstSignature(t testing.TB, msg string) *Signature {
	t.Helper()
	end := strings.Index(msg, "\r\n\r\n")
	fields, err := parseHeader([]byte(msg[:end+2]))
	if err != nil {
		t.Fatal(err)
	}
	if len(fields) == 0 || fields[0].key != "dkim-signature" {
		t.Fatalf("no DKIM-Signature on top of %q", clipQ([]byte(msg)))
	}
	s, err := ParseSignature(fields[0].value())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// toCRLF turns every LF not preceded by CR into CRLF.
func toCRLF(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hasLoneCR(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' && (i+1 == len(s) || s[i+1] != '\n') {
			return true
		}
	}
	return false
}

// FuzzBodyCanon: for any body and any cutting into writes, both
// canonicalizations give the output of refBodyCanon, on the fast path and
// on writeLines alone (the line-by-line code that came before the fast
// path, kept as the path where it is off), each with its own cuts.
func FuzzBodyCanon(f *testing.F) {
	for i, tc := range bodyCanonCases {
		if len(tc.body) < 1024 {
			f.Add([]byte(tc.body), uint64(i))
		}
	}
	for i, tc := range fastPathCases {
		f.Add([]byte(tc.body), uint64(i))
	}
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>7))
		// The body as it is, after a clean stretch, and between two, so
		// that the vectorised scan (64 pairs a step, from 65 bytes on)
		// meets what the fuzzer makes also when it makes short bodies.
		around := append(append([]byte(cl+cl), body...), cl+cl...)
		for _, body := range [][]byte{body, around[:len(around)-2*len(cl)], around} {
			for _, c := range []Canonicalization{Simple, Relaxed} {
				want := refBodyCanon(c, body)
				if got := canonBody(t, c, body); !bytes.Equal(got, want) {
					t.Fatalf("%s, one write: %q, want %q", c, got, want)
				}
				for _, path := range canonPaths {
					cuts := randomCuts(r, len(body), 1+r.IntN(16))
					if got := canonChunks(t, c, body, cuts, path.fast); !bytes.Equal(got, want) {
						t.Fatalf("%s, %s, cuts at %v: %q, want %q", c, path.name, cuts, got, want)
					}
				}
			}
		}
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

func itoas(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = itoa(n)
	}
	return strings.Join(s, ",")
}

// clipQ shortens long test data for error messages.
func clipQ(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…(" + itoa(len(b)) + " bytes)"
	}
	return string(b)
}

// A canonicalizer gives its buffer back at Close; one written to after
// that (never done by Sign or Verify, but possible) must not touch the
// buffer that another canonicalizer now uses.
func TestBodyCanonBufferGivenBack(t *testing.T) {
	var a, b bytes.Buffer
	ca := newBodyCanon(Relaxed, &a)
	ca.Write([]byte("first  message\r\n"))
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	cb := newBodyCanon(Relaxed, &b)
	cb.Write([]byte("second\r\n"))
	ca.Write([]byte("late write\r\n"))
	if err := cb.Close(); err != nil {
		t.Fatal(err)
	}
	if b.String() != "second\r\n" {
		t.Errorf("second canonicalizer wrote %q", b.String())
	}
	if !strings.HasPrefix(a.String(), "first message\r\n") {
		t.Errorf("first canonicalizer wrote %q", a.String())
	}
}

// refRelaxedHeader is relaxed header canonicalization (RFC 6376 §3.4.2) a
// byte at a time, as the package first wrote it: the reference the faster
// appendRelaxedHeader is compared with.
func refRelaxedHeader(raw []byte) []byte {
	colon := bytes.IndexByte(raw, ':')
	if colon < 0 {
		colon = len(raw)
	}
	name := bytes.TrimRight(raw[:colon], " \t")
	var out []byte
	for _, b := range name {
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		out = append(out, b)
	}
	out = append(out, ':')
	if colon < len(raw) {
		space := false
		for _, b := range raw[colon+1:] {
			switch b {
			case '\r', '\n':
			case ' ', '\t':
				space = true
			default:
				if space && len(out) > len(name)+1 {
					out = append(out, ' ')
				}
				space = false
				out = append(out, b)
			}
		}
	}
	return append(out, "\r\n"...)
}

// FuzzRelaxedHeader checks the relaxed header canonicalizer against the
// byte-wise reference, byte for byte, and that appending keeps what is
// already in the buffer.
func FuzzRelaxedHeader(f *testing.F) {
	for _, s := range []string{
		"Subject: a  b\t c \r\n", "A:\r\n  x\r\n\ty \r\n", "B : a \r b\r\n", "C:\r\n",
		"no colon \r\n", "D: a\rb \n c\r\n", "E:  lead and trail  \r\n", "F:x y z\r\n",
		"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;\r\n s=s; h=from:to:\r\n subject; bh=abc=;\r\n b=",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want := refRelaxedHeader(raw)
		if got := relaxedHeader(raw); !bytes.Equal(got, want) {
			t.Fatalf("relaxedHeader(%q) = %q, want %q", raw, got, want)
		}
		if got := appendRelaxedHeader([]byte("pre"), raw); !bytes.Equal(got, append([]byte("pre"), want...)) {
			t.Fatalf("appendRelaxedHeader(pre, %q) = %q", raw, got)
		}
	})
}

// TestBodyCanonBareLF: both canonicalizations read a bare LF as the CRLF
// it stands for, so a front end (the milter, whose MTA may pass bare LFs)
// hands the signer the body as it comes, without making it CRLF first, and
// gets the body hash it would get with every bare LF made CRLF. Random
// bodies of the bytes that matter, in random pieces, both paths.
func TestBodyCanonBareLF(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("a \t\r\n\n")
	toCRLF := func(p []byte) []byte {
		var out []byte
		for i, b := range p {
			if b == '\n' && (i == 0 || p[i-1] != '\r') {
				out = append(out, '\r')
			}
			out = append(out, b)
		}
		return out
	}
	for range 3000 {
		body := make([]byte, r.IntN(200))
		for i := range body {
			body[i] = alphabet[r.IntN(len(alphabet))]
		}
		if r.IntN(2) == 0 { // long enough for the vector scan too
			body = append([]byte(cl+cl), body...)
		}
		for _, c := range []Canonicalization{Simple, Relaxed} {
			want := canonBody(t, c, toCRLF(body))
			for _, path := range canonPaths {
				cuts := randomCuts(r, len(body), 1+r.IntN(8))
				if got := canonChunks(t, c, body, cuts, path.fast); !bytes.Equal(got, want) {
					t.Fatalf("%s, %s, %q cut at %v: %q, want %q (as with CRLF)", c, path.name, body, cuts, got, want)
				}
			}
		}
	}
}
