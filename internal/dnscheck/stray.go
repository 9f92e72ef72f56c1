package dnscheck

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// strayKind is a class of character that no DKIM key record needs but that
// people paste into DNS providers' forms: the quotes and parentheses of a
// zone file, the backslash escapes of dig output, the no-break spaces and
// curly quotes of a web page or word processor.
type strayKind int

const (
	strayQuote strayKind = iota
	strayBackslash
	strayParen
	straySmartQuote
	straySpace
	strayControl
	strayNonASCII
	nStrayKinds
)

var strayNames = [nStrayKinds]string{
	strayQuote:      `quote character (")`,
	strayBackslash:  `backslash (\)`,
	strayParen:      "parenthesis",
	straySmartQuote: "curly quote",
	straySpace:      "non-ASCII space (such as a no-break space)",
	strayControl:    "control character",
	strayNonASCII:   "non-ASCII character",
}

// stray is one stray character (or backslash escape) in a record value.
type stray struct {
	kind strayKind
	// pos is the byte offset in the value.
	pos int
	// text is what was found: `"`, `\;`, or "U+00A0".
	text string
}

// findStrays lists the stray characters in a record value, in order. White
// space (SP, HTAB, CR, LF) is not stray: RFC 6376 §3.2 allows folding white
// space around tags and, §3.6.1, inside the base64 of p=. The value is the
// concatenation of a TXT record's strings as raw bytes.
func findStrays(v string) []stray {
	var out []stray
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		k, ok := classify(r, size)
		if ok {
			s := stray{kind: k, pos: i, text: v[i : i+size]}
			switch {
			case k == strayBackslash && i+1 < len(v):
				// Show the escape whole: \" or \; says "copied from dig".
				_, n := utf8.DecodeRuneInString(v[i+1:])
				s.text = v[i : i+1+n]
				size += n
			case r == utf8.RuneError && size == 1:
				s.text = fmt.Sprintf("byte 0x%02X", v[i])
			case r > unicode.MaxASCII || k == strayControl:
				s.text = fmt.Sprintf("U+%04X", r)
			}
			out = append(out, s)
		}
		i += size
	}
	return out
}

func classify(r rune, size int) (strayKind, bool) {
	switch {
	case r == '"':
		return strayQuote, true
	case r == '\\':
		return strayBackslash, true
	case r == '(' || r == ')':
		return strayParen, true
	case r == '\t' || r == '\r' || r == '\n':
		return 0, false
	case r < ' ' || r == 0x7f:
		return strayControl, true
	case r <= unicode.MaxASCII:
		return 0, false
	case strings.ContainsRune("“”„‟‘’‚‛«»", r):
		return straySmartQuote, true
	case unicode.IsSpace(r) || r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060' || r == '\ufeff':
		return straySpace, true
	}
	return strayNonASCII, true
}

// cleanStrays is what the value would be without its stray characters:
// backslash escapes are decoded first (\; to ;, \DDD to the byte, as dig
// writes them), then every character findStrays reports is dropped. It tells
// whether the key is right under the strays.
func cleanStrays(v string) string {
	var dec strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 == len(v) {
			dec.WriteByte(c)
			continue
		}
		if i+3 < len(v) && isDigit(v[i+1]) && isDigit(v[i+2]) && isDigit(v[i+3]) {
			if n := int(v[i+1]-'0')*100 + int(v[i+2]-'0')*10 + int(v[i+3]-'0'); n < 256 {
				dec.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		i++
		dec.WriteByte(v[i])
	}
	var out strings.Builder
	d := dec.String()
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c == '\t' || c == '\r' || c == '\n' || (c >= ' ' && c <= '~' && !strings.ContainsRune(`"\()`, rune(c))) {
			out.WriteByte(c)
		}
	}
	return out.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// describeStrays says in words what was found and where, for example
// `2 quote characters (") (first at character 1), 1 backslash (\) (\; at
// character 9)`.
func describeStrays(v string, ss []stray) string {
	var count [nStrayKinds]int
	var first [nStrayKinds]stray
	for _, s := range ss {
		if count[s.kind] == 0 {
			first[s.kind] = s
		}
		count[s.kind]++
	}
	var parts []string
	for k := range nStrayKinds {
		if count[k] == 0 {
			continue
		}
		f := first[k]
		where := fmt.Sprintf("%s at character %d", f.text, utf8.RuneCountInString(v[:f.pos])+1)
		if count[k] > 1 {
			where = "first " + where
		}
		parts = append(parts, fmt.Sprintf("%d × %s (%s)", count[k], strayNames[k], where))
	}
	return strings.Join(parts, ", ")
}
