package dkim

import (
	"bytes"
	"slices"
	"strings"
)

// Errors about the message itself.
var (
	ErrMalformedHeader = sentinel("malformed message header")
	ErrHeaderTooLarge  = sentinel("message header too large")
)

// DefaultMaxHeaderBytes bounds the header kept in memory while signing or
// verifying.
const DefaultMaxHeaderBytes = 1 << 20

// field is one header field as read, with line ends normalized to CRLF.
type field struct {
	raw  []byte // "Name: value\r\n", folded lines included
	name string // as written, without trailing white space
	key  string // lower-case name
}

// value returns the text after the colon, unfolded and trimmed.
func (f field) value() string {
	return strings.TrimSpace(unfold.Replace(f.folded()))
}

// folded returns the text after the colon as written, folding included,
// without the final CRLF.
func (f field) folded() string {
	return string(bytes.TrimSuffix(f.raw[bytes.IndexByte(f.raw, ':')+1:], crlf))
}

var unfold = strings.NewReplacer("\r\n", "", "\n", "")

// Header is a message header split into fields the way Sign and Verify
// split it, for callers that must read fields of the message they sign
// (the relay checks From and identity fields against the sender).
type Header struct{ fields []field }

// ParseHeader splits a header: the lines up to the empty line that ends it,
// which may follow. A line that starts with white space continues the field
// before it; any other line needs a valid field name and a colon. Errors
// wrap ErrMalformedHeader.
func ParseHeader(h []byte) (Header, error) {
	if bytes.Equal(h, crlf) || bytes.HasSuffix(h, []byte("\r\n\r\n")) {
		h = h[:len(h)-2] // the empty line
	}
	fields, err := parseHeader(h)
	return Header{fields}, err
}

// Values returns the values of every field called name (in any case), in
// order, each as written after the colon, folding included, without the
// final CRLF.
func (h Header) Values(name string) []string {
	var vs []string
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.folded())
		}
	}
	return vs
}

// headerSplitter collects the header from a stream of writes until the empty
// line that ends it, and hands back what follows as the start of the body.
type headerSplitter struct {
	max     int
	buf     []byte
	scanned int
}

// feed adds p. When the header is complete it returns done, the header
// (including the final line end of the last field), and the body bytes of p;
// both may point into p, so the caller uses them before p is reused.
func (s *headerSplitter) feed(p []byte) (done bool, header, body []byte, err error) {
	if len(s.buf) == 0 {
		// The header usually ends in the first write: look for its end in
		// p itself, and copy only if it goes on (not the whole body).
		s.buf = p
		defer func() {
			if !done && len(s.buf) > 0 && &s.buf[0] == &p[0] {
				s.buf = append([]byte(nil), s.buf...)
			}
		}()
	} else {
		s.buf = append(s.buf, p...)
	}
	// An empty first line means an empty header.
	if bytes.HasPrefix(s.buf, []byte("\r\n")) {
		return true, nil, s.buf[2:], nil
	}
	if bytes.HasPrefix(s.buf, []byte("\n")) {
		return true, nil, s.buf[1:], nil
	}
	from := max(0, s.scanned-2)
	for {
		i := bytes.IndexByte(s.buf[from:], '\n')
		if i < 0 {
			break
		}
		i += from
		rest := s.buf[i+1:]
		if len(rest) == 0 || (len(rest) == 1 && rest[0] == '\r') {
			// Cannot tell yet whether the next line is empty.
			s.scanned = i
			break
		}
		if rest[0] == '\n' {
			return s.done(i+1, rest[1:])
		}
		if rest[0] == '\r' && rest[1] == '\n' {
			return s.done(i+1, rest[2:])
		}
		from = i + 1
		s.scanned = from
	}
	// A CR after the last line end may begin the empty line: not header.
	size := len(s.buf)
	if bytes.HasSuffix(s.buf, []byte("\n\r")) {
		size--
	}
	if size > s.max {
		return false, nil, nil, s.tooLarge()
	}
	return false, nil, nil, nil
}

// done ends the header after its first n bytes. The bound applies however
// the message is cut into writes, a header that came in one write included.
func (s *headerSplitter) done(n int, body []byte) (bool, []byte, []byte, error) {
	if n > s.max {
		return false, nil, nil, s.tooLarge()
	}
	return true, s.buf[:n], body, nil
}

func (s *headerSplitter) tooLarge() error {
	return errorf(ErrHeaderTooLarge, ": ", "more than %d bytes before the empty line that ends it", s.max)
}

// rest returns the whole input when the stream ended inside the header: a
// message without a body.
func (s *headerSplitter) rest() []byte { return s.buf }

// parseHeader splits a header into fields, normalizing line ends to CRLF.
// The fields' raw bytes share one copy of the header, and the names of
// common fields are not copied at all: at the size of a short message, one
// allocation per field was a good part of what signing cost beside the
// signature.
func parseHeader(h []byte) ([]field, error) {
	fields, _, err := appendHeaderFields(nil, nil, h)
	return fields, err
}

// appendHeaderFields is parseHeader appending the fields to fields, their
// bytes copied into buf's memory from its start; it returns buf, which the
// fields point into, for reuse.
func appendHeaderFields(fields []field, buf, h []byte) ([]field, []byte, error) {
	lines := bytes.Count(h, []byte("\n")) + 1
	first := len(fields)
	fields = slices.Grow(fields, lines)
	// Every line gets a CRLF: at most one byte more each than as written,
	// two for a last line without a line end.
	buf = slices.Grow(buf[:0], len(h)+lines+1)
	var ends []int // where each field's raw bytes end in buf
	var endsArr [32]int
	ends = endsArr[:0]
	line := 0
	for len(h) > 0 {
		line++
		end := bytes.IndexByte(h, '\n')
		var l []byte
		if end < 0 {
			l, h = h, nil
		} else {
			l, h = h[:end], h[end+1:]
		}
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) > 0 && isWSP(l[0]) {
			if len(fields) == first {
				return fields[:first], buf, errorf(ErrMalformedHeader, ": ", "line 1 starts with white space")
			}
			buf = append(append(buf, l...), crlf...)
			ends[len(ends)-1] = len(buf)
			continue
		}
		colon := bytes.IndexByte(l, ':')
		if colon < 0 {
			return fields[:first], buf, errorf(ErrMalformedHeader, ": ", "line %d is not a header field (no colon)", line)
		}
		name, key := fieldName(bytes.TrimRight(l[:colon], " \t"))
		if !validFieldName(name) {
			return fields[:first], buf, errorf(ErrMalformedHeader, ": ", "line %d has an invalid field name", line)
		}
		buf = append(append(buf, l...), crlf...)
		ends = append(ends, len(buf))
		fields = append(fields, field{name: name, key: key})
	}
	start := 0
	for i, end := range ends {
		// A full slice expression: appending to one field's raw bytes must
		// not write over the next field's.
		fields[first+i].raw = buf[start:end:end]
		start = end
	}
	return fields, buf, nil
}

// commonField returns, for a field name as mailers usually spell it, the
// same name and its key as constant strings, so that neither needs an
// allocation; ok is false for other names. A switch, which the compiler
// turns into a search by length and value, costs less than a table lookup.
func commonField(s string) (name, key string, ok bool) {
	switch s {
	case "From":
		return "From", "from", true
	case "To":
		return "To", "to", true
	case "Cc":
		return "Cc", "cc", true
	case "Bcc":
		return "Bcc", "bcc", true
	case "Subject":
		return "Subject", "subject", true
	case "Date":
		return "Date", "date", true
	case "Message-ID":
		return "Message-ID", "message-id", true
	case "Message-Id":
		return "Message-Id", "message-id", true
	case "MIME-Version":
		return "MIME-Version", "mime-version", true
	case "Mime-Version":
		return "Mime-Version", "mime-version", true
	case "Content-Type":
		return "Content-Type", "content-type", true
	case "Content-Transfer-Encoding":
		return "Content-Transfer-Encoding", "content-transfer-encoding", true
	case "Reply-To":
		return "Reply-To", "reply-to", true
	case "Sender":
		return "Sender", "sender", true
	case "In-Reply-To":
		return "In-Reply-To", "in-reply-to", true
	case "References":
		return "References", "references", true
	case "Received":
		return "Received", "received", true
	case "Return-Path":
		return "Return-Path", "return-path", true
	case "DKIM-Signature":
		return "DKIM-Signature", "dkim-signature", true
	case "List-Unsubscribe":
		return "List-Unsubscribe", "list-unsubscribe", true
	case "List-Unsubscribe-Post":
		return "List-Unsubscribe-Post", "list-unsubscribe-post", true
	case "List-Id":
		return "List-Id", "list-id", true
	}
	return "", "", false
}

// fieldName returns a field name as a string and its lower-case key.
func fieldName(b []byte) (name, key string) {
	if name, key, ok := commonField(string(b)); ok {
		return name, key
	}
	name = string(b)
	return name, strings.ToLower(name)
}

// ftext = %d33-57 / %d59-126 (RFC 5322 §3.6.8).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// headerPicker hands out header fields for h= names from the bottom up
// (RFC 6376 §5.4.2): each name takes the last instance not taken yet.
type headerPicker struct {
	fields []field
	taken  uint64 // bit i: fields[i] is taken, for the first 64 fields
	more   []bool // the same for fields[64:]
}

func newHeaderPicker(fields []field) headerPicker {
	p := headerPicker{fields: fields}
	if len(fields) > 64 {
		p.more = make([]bool, len(fields)-64)
	}
	return p
}

// pick returns the next instance of the (case-insensitive) name, or nil when
// none is left: a name listed more often than it occurs matches the empty
// string (RFC 6376 §5.4). The instances taken are always the lowest ones of
// their name, so skipping the taken ones is skipping as many as were taken.
func (p *headerPicker) pick(name string) *field {
	key := lowerKey(name)
	for i := len(p.fields) - 1; i >= 0; i-- {
		if p.fields[i].key != key || p.isTaken(i) {
			continue
		}
		if i < 64 {
			p.taken |= 1 << i
		} else {
			p.more[i-64] = true
		}
		return &p.fields[i]
	}
	return nil
}

func (p *headerPicker) isTaken(i int) bool {
	if i < 64 {
		return p.taken&(1<<i) != 0
	}
	return p.more[i-64]
}

// lowerKey returns name in lower case, without allocating for the common
// field names or for a name already in lower case.
func lowerKey(name string) string {
	lower := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			lower = false
			break
		}
	}
	if lower {
		return name
	}
	if _, key, ok := commonField(name); ok {
		return key
	}
	return strings.ToLower(name)
}
