package dkim

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Canonicalization is an algorithm of RFC 6376 §3.4.
type Canonicalization string

// The two canonicalization algorithms.
const (
	Simple  Canonicalization = "simple"
	Relaxed Canonicalization = "relaxed"
)

// parseCanonicalization reads a c= value: "header/body", "header" alone
// meaning body simple (RFC 6376 §3.5).
func parseCanonicalization(v string) (header, body Canonicalization, err error) {
	h, b, found := strings.Cut(v, "/")
	if !found {
		b = string(Simple)
	}
	header, body = Canonicalization(h), Canonicalization(b)
	for _, c := range []Canonicalization{header, body} {
		if c != Simple && c != Relaxed {
			return "", "", fmt.Errorf("unknown canonicalization %q", clip(string(c)))
		}
	}
	return header, body, nil
}

// bodyCanon canonicalizes a body as it streams through Write and hands the
// result to w in large writes. Lines may be split across writes at any byte.
//
// The fast path passes runs of lines that canonicalization leaves unchanged
// straight to w without copying; only lines that change (bare LF, trailing
// white space, tabs or double spaces in relaxed mode, empty lines) go through
// the byte-wise path. Empty lines are withheld until a non-empty line follows,
// since trailing empty lines are removed (RFC 6376 §3.4.3, §3.4.4).
type bodyCanon struct {
	relaxed bool
	w       io.Writer
	err     error
	buf     []byte

	blank   int  // empty lines withheld
	started bool // the current line has emitted content
	wsp     bool // relaxed: white space seen in this line, not yet emitted
	cr      bool // a CR ended the last segment; it may begin a CRLF
	any     bool // anything has been emitted at all
}

const canonBufSize = 32 << 10

func newBodyCanon(c Canonicalization, w io.Writer) *bodyCanon {
	return &bodyCanon{relaxed: c == Relaxed, w: w, buf: make([]byte, 0, canonBufSize)}
}

func (c *bodyCanon) Write(p []byte) (int, error) {
	n := len(p)
	// Relaxed lines with a tab or two spaces need collapsing; a chunk
	// without either lets clean lines skip the check.
	mayCollapse := c.relaxed && (bytes.IndexByte(p, '\t') >= 0 || bytes.Contains(p, []byte("  ")))
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.segment(p)
			break
		}
		if c.clean() {
			// Take the longest run of unchanged lines.
			run := 0
			for {
				line := p[run : run+i+1]
				if !c.cleanLine(line, mayCollapse) {
					break
				}
				run += i + 1
				if i = bytes.IndexByte(p[run:], '\n'); i < 0 {
					break
				}
			}
			if run > 0 {
				c.flushBlank()
				c.emit(p[:run])
				p = p[run:]
				continue
			}
		}
		c.segment(p[:i])
		c.endLine()
		p = p[i+1:]
	}
	return n, c.err
}

// clean reports whether the state is at the start of a line with nothing
// pending, where the fast path may run.
func (c *bodyCanon) clean() bool { return !c.started && !c.wsp && !c.cr }

// cleanLine reports whether a complete line (ending in LF) is its own
// canonical form: CRLF-terminated, not empty, and in relaxed mode without
// trailing or repeated white space.
func (c *bodyCanon) cleanLine(line []byte, mayCollapse bool) bool {
	n := len(line)
	if n < 3 || line[n-2] != '\r' {
		return false
	}
	if !c.relaxed {
		return true
	}
	if isWSP(line[n-3]) {
		return false
	}
	return !mayCollapse || (bytes.IndexByte(line, '\t') < 0 && !bytes.Contains(line, []byte("  ")))
}

// segment takes bytes of one line that contain no LF.
func (c *bodyCanon) segment(p []byte) {
	if len(p) == 0 {
		return
	}
	c.loneCR()
	// Withhold a final CR (it may pair with an LF in the next write) and, in
	// relaxed mode, the white space before it.
	endCR := p[len(p)-1] == '\r'
	if endCR {
		p = p[:len(p)-1]
	}
	endWSP := false
	if c.relaxed {
		j := len(p)
		for j > 0 && isWSP(p[j-1]) {
			j--
		}
		endWSP, p = j < len(p), p[:j]
	}
	if len(p) > 0 {
		c.content(p)
	}
	c.wsp = c.wsp || endWSP
	c.cr = endCR
}

// loneCR emits the CR withheld last time when no LF follows it: a lone CR
// is content, and white space before it was not trailing.
func (c *bodyCanon) loneCR() {
	if !c.cr {
		return
	}
	c.start()
	if c.wsp {
		c.emit(sp)
		c.wsp = false
	}
	c.emit(crOnly)
	c.cr = false
}

// start marks the current line as having content, first emitting the empty
// lines withheld before it.
func (c *bodyCanon) start() {
	if !c.started {
		c.flushBlank()
		c.started = true
	}
}

// content emits non-empty line content that has no trailing white space,
// after what is withheld before it.
func (c *bodyCanon) content(p []byte) {
	c.start()
	if !c.relaxed {
		c.emit(p)
		return
	}
	if c.wsp {
		c.emit(sp)
		c.wsp = false
		for len(p) > 0 && isWSP(p[0]) {
			p = p[1:]
		}
	}
	if bytes.IndexByte(p, '\t') < 0 && !bytes.Contains(p, []byte("  ")) {
		c.emit(p)
		return
	}
	// Reduce each run of white space to one SP (RFC 6376 §3.4.4 a).
	start := 0
	for i := 0; i < len(p); i++ {
		if !isWSP(p[i]) {
			continue
		}
		j := i + 1
		for j < len(p) && isWSP(p[j]) {
			j++
		}
		if j-i > 1 || p[i] == '\t' {
			c.emit(p[start:i])
			c.emit(sp)
			start = j
		}
		i = j - 1
	}
	c.emit(p[start:])
}

func (c *bodyCanon) endLine() {
	// A pending CR is the CR of this CRLF; pending white space is trailing.
	c.cr, c.wsp = false, false
	if c.started {
		c.emit(crlf)
		c.started = false
	} else {
		c.blank++
	}
}

func (c *bodyCanon) flushBlank() {
	for ; c.blank > 0; c.blank-- {
		c.emit(crlf)
	}
}

// Close ends the body: a last line without CRLF gets one, trailing empty
// lines are dropped, and an empty body is "" (relaxed) or CRLF (simple).
func (c *bodyCanon) Close() error {
	c.loneCR() // a CR that ends the body is content too
	if c.started {
		c.emit(crlf)
	}
	if !c.any && !c.relaxed {
		c.emit(crlf)
	}
	c.flush()
	return c.err
}

var (
	crlf   = []byte("\r\n")
	sp     = []byte(" ")
	crOnly = []byte("\r")
)

func (c *bodyCanon) emit(p []byte) {
	if len(p) == 0 {
		return
	}
	c.any = true
	if len(c.buf)+len(p) > cap(c.buf) {
		c.flush()
		if len(p) >= cap(c.buf)/2 {
			c.write(p)
			return
		}
	}
	c.buf = append(c.buf, p...)
}

func (c *bodyCanon) flush() {
	if len(c.buf) > 0 {
		c.write(c.buf)
		c.buf = c.buf[:0]
	}
}

func (c *bodyCanon) write(p []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(p)
	}
}

// canonicalHeader returns a header field in canonical form, CRLF-terminated.
// raw is the whole field as read, CRLF line ends, ending in CRLF.
func canonicalHeader(c Canonicalization, raw []byte) []byte {
	if c == Simple {
		return raw
	}
	return relaxedHeader(raw)
}

// relaxedHeader implements RFC 6376 §3.4.2: lower-case name, unfolded value,
// white-space runs reduced to one SP, none at the end or around the colon.
func relaxedHeader(raw []byte) []byte {
	colon := bytes.IndexByte(raw, ':')
	if colon < 0 {
		colon = len(raw)
	}
	name := bytes.TrimRight(raw[:colon], " \t")
	out := make([]byte, 0, len(raw))
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
				// Unfold: CRLF and bare LF vanish (RFC 6376 §3.4.2 b).
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
	return append(out, crlf...)
}
