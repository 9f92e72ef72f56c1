package dkim

import (
	"fmt"
	"strings"
)

// ErrTagList is returned for text that is not a valid tag=value list
// (RFC 6376 §3.2).
var ErrTagList = sentinel("malformed tag list")

// Tag is one tag=value pair of a tag list, with surrounding folding white
// space removed.
type Tag struct {
	Name  string
	Value string
}

// TagList is a parsed tag list in the order written.
type TagList []Tag

// tagListDetail returns what a ParseTagList error adds to its class.
func tagListDetail(err error) string {
	if e, ok := err.(*detailError); ok && e.class == ErrTagList {
		return e.detail
	}
	return reason(err)
}

// Get returns the value of the named tag and whether it is present.
func (l TagList) Get(name string) (string, bool) {
	for _, t := range l {
		if t.Name == name {
			return t.Value, true
		}
	}
	return "", false
}

// ParseTagList parses an RFC 6376 §3.2 tag list:
//
//	tag-list = tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//
// Tag names are case-sensitive; a name that appears twice is an error.
func ParseTagList(s string) (TagList, error) {
	var l TagList
	specs := strings.Split(s, ";")
	for i, spec := range specs {
		if trimFWS(spec) == "" {
			if i == len(specs)-1 && i > 0 {
				break // a trailing ";" is allowed
			}
			if len(specs) == 1 {
				return nil, errorf(ErrTagList, ": ", "empty")
			}
			return nil, errorf(ErrTagList, ": ", "empty tag at position %d", i+1)
		}
		eq := strings.IndexByte(spec, '=')
		if eq < 0 {
			return nil, errorf(ErrTagList, ": ", "%q has no \"=\"", clip(trimFWS(spec)))
		}
		name := trimFWS(spec[:eq])
		if !validTagName(name) {
			return nil, errorf(ErrTagList, ": ", "invalid tag name %q", clip(name))
		}
		value := trimFWS(spec[eq+1:])
		if err := checkTagValue(value); err != nil {
			return nil, errorf(ErrTagList, ": ", "tag %s: %v", name, err)
		}
		if _, dup := l.Get(name); dup {
			return nil, errorf(ErrTagList, ": ", "tag %s appears twice", name)
		}
		l = append(l, Tag{Name: name, Value: value})
	}
	return l, nil
}

// tag-name = ALPHA *ALNUMPUNC; ALNUMPUNC = ALPHA / DIGIT / "_"
func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// tag-value = [ tval *( 1*(WSP / FWS) tval ) ]; tval = 1*VALCHAR;
// VALCHAR = %x21-3A / %x3C-7E.
func checkTagValue(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 0x21 && c <= 0x7e && c != ';':
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			return fmt.Errorf("byte 0x%02x is not allowed", c)
		}
	}
	return nil
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isWSP(c byte) bool   { return c == ' ' || c == '\t' }

// trimFWS removes folding white space (SP, HTAB, CR, LF) at both ends.
func trimFWS(s string) string { return strings.Trim(s, " \t\r\n") }

// removeFWS deletes all folding white space, as base64 values allow it
// anywhere (RFC 6376 §2.10).
func removeFWS(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// clip shortens text quoted in an error so that hostile input cannot make
// error messages (and log lines) arbitrarily long.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
