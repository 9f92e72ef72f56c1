package dkim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"sync"
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
// Most of a real body needs no rewriting, so where the CPU can scan for the
// few byte pairs that do (fastScan), Write starts with the fast path
// (passClean): it passes the stretches in which no pair needs work on as
// they stand (long ones straight to w, without copying), and rewrites each
// run of white space inside a line to one SP as it goes. It stops at what
// it leaves to the exact path: a bare LF, a lone CR, white space at the end
// of a line or of the write, and the last, unfinished line of the write.
// The exact path (writeLines) takes one line from there, then the fast path
// goes on.
//
// writeLines, the path for all input where the fast path is off, also
// passes runs of lines that canonicalization leaves unchanged on as they
// stand, finding one line end at a time. In relaxed mode a whole line that
// changes (trailing white space, tabs or double spaces, bare LF) is
// rewritten into the buffer in one pass (relaxedLine). What is left (lines cut across
// writes, lone CRs at a cut, bare LF in simple mode) goes through the
// byte-wise path. Empty lines are withheld until a non-empty line follows,
// since trailing empty lines are removed (RFC 6376 §3.4.3, §3.4.4).
type bodyCanon struct {
	relaxed bool
	fast    bool // Write may take the fast path (fastScan); tests turn it off
	w       io.Writer
	err     error
	buf     []byte
	bufp    *[]byte // buf's home in canonBufs, until Close gives it back

	blank   int  // empty lines withheld
	started bool // the current line has emitted content
	wsp     bool // relaxed: white space seen in this line, not yet emitted
	cr      bool // a CR ended the last segment; it may begin a CRLF
	any     bool // anything has been emitted at all
}

const canonBufSize = 32 << 10

// canonBufs recycles the canonicalizers' buffers: a relay signs every
// message, and a fresh 32 KiB buffer each time was most of what signing
// a small message allocated.
var canonBufs = sync.Pool{New: func() any { b := make([]byte, 0, canonBufSize); return &b }}

func newBodyCanon(c Canonicalization, w io.Writer) *bodyCanon {
	bp := canonBufs.Get().(*[]byte)
	return &bodyCanon{relaxed: c == Relaxed, fast: fastScan(), w: w, buf: (*bp)[:0], bufp: bp}
}

func (c *bodyCanon) Write(p []byte) (int, error) {
	if !c.fast {
		return c.writeLines(p)
	}
	n := len(p)
	for len(p) > 0 {
		if !c.wsp && !c.cr {
			p = p[c.passClean(p):]
		}
		// One line, or the rest of the write if no line ends in it, the
		// exact way.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.writeLines(p)
			break
		}
		c.writeLines(p[:i+1])
		p = p[i+1:]
	}
	return n, c.err
}

// passClean is the fast path of Write. It takes p from its start, with
// nothing pending (no white space or CR withheld; the current line may have
// content), and returns how many bytes it has dealt with. Up to the next
// pair pairScan reports, the input is its own canonical form (see
// pairProblem), and pass hands it on as it stands. At a problem that is a
// run of white space inside a line, followed by content in p, it emits one
// SP for the run and scans on after it (RFC 6376 §3.4.4 a); at any other
// problem it stops before the bytes the exact path must see: the white
// space (which may be trailing), the lone CR, or the byte before a bare LF
// (a SP there would be trailing). Without problems it stops after the last
// line end in p; the unfinished line after it may go on in the next write.
//
// Invariants, which hold where it stops and so let writeLines take over:
// nothing withheld but empty lines (c.blank), c.started true exactly when
// the current line has content, and the byte before the stop is neither
// white space that may be trailing nor a CR that may begin a CRLF.
func (c *bodyCanon) passClean(p []byte) int {
	if len(p) == 0 || p[0] == '\n' {
		return 0 // a bare LF: no CR is pending
	}
	scan := pairScan{p: p, relaxed: c.relaxed}
	pos := 0 // p[:pos] is dealt with
	for {
		k := scan.next(pos)
		if k+1 >= len(p) {
			// No line end: all of it left to writeLines.
			end := pos + bytes.LastIndexByte(p[pos:], '\n') + 1
			c.pass(p[pos:end])
			return end
		}
		a, b := p[k], p[k+1]
		if c.relaxed && (a == '\t' || a == ' ' && b == ' ') {
			// A run of white space. It begins at k, or at a SP just
			// before a tab. (Not before pos: p[pos-1], if any, is the
			// end of a run already reduced or of a line.)
			start := k
			if k > pos && p[k-1] == ' ' {
				start--
			}
			end := k + 1
			for end < len(p) && isWSP(p[end]) {
				end++
			}
			if end == len(p) || p[end] == '\r' || p[end] == '\n' {
				// It may be trailing white space: the exact path decides.
				c.pass(p[pos:start])
				return start
			}
			if q := p[pos : start+1]; p[start] == ' ' {
				// The SP the run becomes is its first byte: pass it
				// with what comes before. Indented lines take this
				// branch once a line, so what pass would do for q,
				// which ends in content, is spelled out for the case
				// that it fits in the buffer.
				if len(q) < passDirect && len(c.buf)+len(q) <= cap(c.buf) {
					c.start()
					c.any = true
					c.buf = append(c.buf, q...)
				} else {
					c.pass(q)
				}
			} else {
				c.pass(p[pos:start])
				c.start()
				c.emit(sp)
			}
			pos = end
			continue
		}
		// A bare LF, a lone CR or a SP before a CR. An LF at k is paired
		// with the CR before it (the pair before k is no problem, and p[0]
		// is no LF); it is the LF after it that is bare.
		if a == '\n' {
			k++
		}
		c.pass(p[pos:k])
		return k
	}
}

// passDirect is the length from which pass writes a stretch straight to w
// rather than copying it into the buffer: long enough that the extra,
// smaller write of what the buffer held costs less than the copy.
const passDirect = 2 << 10

// pass emits q, input already in canonical form from the current state: it
// contains no problem pair (pairProblem), does not end in a CR, ends in
// white space only if that is a single SP followed by content, and does not
// start with an LF. Lines that end in q end in CRLF; empty lines at its end
// are withheld (c.blank), the rest is emitted as it stands.
func (c *bodyCanon) pass(q []byte) {
	if len(q) == 0 {
		return
	}
	if q[len(q)-1] != '\n' {
		c.start()
		c.emitSpan(q)
		return
	}
	// Withhold the empty lines at the end: CRLFs each at the start of a
	// line, the first line of q being a continuation if c.started.
	t, empty := len(q), 0
	for t >= 2 && (t > 2 && q[t-3] == '\n' || t == 2 && !c.started) {
		t -= 2
		empty++
	}
	if t > 0 {
		c.start()
		c.emitSpan(q[:t])
	}
	c.started = false
	c.blank += empty
}

// emitSpan is emit for long stretches of input: from passDirect bytes on it
// writes them straight to w, after what the buffer holds.
func (c *bodyCanon) emitSpan(p []byte) {
	if len(p) < passDirect {
		c.emit(p)
		return
	}
	c.any = true
	c.flush()
	c.write(p)
}

// writeLines is Write without the fast path: the path for a line the fast
// path leaves, and for all input where it is off.
func (c *bodyCanon) writeLines(p []byte) (int, error) {
	n := len(p)
	// In relaxed mode ws finds the tabs and double spaces of the whole
	// chunk, once, for all its lines; p is the rest of it, from n-len(p).
	ws := wspRuns{q: p, at: -1}
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
				if !c.cleanLine(line, &ws, n-len(p)+run) {
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
				if i < 0 {
					continue
				}
			}
			// p[:i+1] is a whole line that canonicalization changes.
			if c.relaxed && c.relaxedLine(p[:i+1], &ws, n-len(p)) {
				p = p[i+1:]
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

// cleanLine reports whether a complete line (ending in LF), at offset off of
// the chunk ws searches, is its own canonical form: CRLF-terminated, not
// empty, and in relaxed mode without trailing or repeated white space.
func (c *bodyCanon) cleanLine(line []byte, ws *wspRuns, off int) bool {
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
	// A run ending at the CR would be trailing, excluded above.
	return ws.next(off) >= off+n-2
}

// relaxedLine writes the relaxed form of a whole line (ending in LF), at
// offset off of the chunk ws searches, into the buffer in one pass, from the
// clean state. Indented HTML makes such lines common, and the byte-wise path
// costs several times as much. It declines (false) a line too long for the
// buffer, leaving it to segment.
func (c *bodyCanon) relaxedLine(line []byte, ws *wspRuns, off int) bool {
	if len(line) > cap(c.buf)/2 {
		return false
	}
	// A CR before the LF is the line end; any other CR is content, so white
	// space before it is not trailing (RFC 6376 §3.4.4 b).
	end := len(line) - 1
	if end > 0 && line[end-1] == '\r' {
		end--
	}
	for end > 0 && isWSP(line[end-1]) {
		end--
	}
	if end == 0 {
		// Nothing but white space: an empty line.
		c.blank++
		return true
	}
	c.flushBlank()
	if len(c.buf)+end+len(crlf) > cap(c.buf) {
		c.flush()
	}
	c.buf = append(ws.appendCollapsed(c.buf, off, off+end), crlf...)
	c.any = true
	return true
}

// wspRuns finds, left to right, the places in a chunk q where relaxed
// canonicalization changes white space: a tab, or a double space (a run of
// WSP that is not a single SP begins with one of these, or with a SP just
// before a tab). It remembers the next place found, so that each byte of q
// is searched at most once however many lines q holds.
type wspRuns struct {
	q  []byte
	at int // the next place at or after the last search; len(q): none; -1: not searched
}

// next returns the offset of the first tab or double space at or after from,
// or len(q). Calls must not go back: from never decreases.
func (r *wspRuns) next(from int) int {
	if r.at < from {
		r.at = len(r.q)
		if i := indexWSPRun(r.q[from:]); i >= 0 {
			r.at = from + i
		}
	}
	return r.at
}

// nearRun is how far indexWSPRun looks eight bytes at a time before it hands
// over to the vectorised searches of package bytes.
const nearRun = 256

// indexWSPRun returns the index of the first tab or double space in p, or -1.
// In mail such places are mostly near (indented HTML: every line) or absent
// (plain text, base64). bytes.Index stops at every single SP on the way, one
// call each, which costs more than the SHA-256 of the line; so the first
// nearRun bytes are tested eight at a time with word arithmetic, and only a
// longer search goes to bytes.IndexByte and bytes.Index.
func indexWSPRun(p []byte) int {
	const (
		ones = 0x0101010101010101
		tabs = ones * '\t'
		sps  = ones * ' '
	)
	i := 0
	for ; i+9 <= len(p); i += 8 {
		if i >= nearRun {
			t, d := bytes.IndexByte(p[i:], '\t'), bytes.Index(p[i:], dblSP)
			if t < 0 || (d >= 0 && d < t) {
				t = d
			}
			if t < 0 {
				return -1
			}
			return i + t
		}
		x := binary.LittleEndian.Uint64(p[i:])
		y := binary.LittleEndian.Uint64(p[i+1:]) // the byte after each byte of x
		if m := zeroBytes(x^tabs) | (zeroBytes(x^sps) & zeroBytes(y^sps)); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(p); i++ {
		if p[i] == '\t' || (p[i] == ' ' && i+1 < len(p) && p[i+1] == ' ') {
			return i
		}
	}
	return -1
}

// zeroBytes returns v with the high bit set in each byte that is zero, and
// every other bit clear. Unlike the shorter (v-0x01..)&^v&0x80.. it has no
// false positives, as no carry crosses from one byte to the next.
func zeroBytes(v uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	return ^((v&low7 + low7) | v | low7)
}

// appendCollapsed appends q[s:e] to dst with each run of white space that is
// not a single SP reduced to one SP (RFC 6376 §3.4.4 a). q[e-1] must not be
// white space.
func (r *wspRuns) appendCollapsed(dst []byte, s, e int) []byte {
	for {
		i := r.next(s)
		if i >= e {
			return append(dst, r.q[s:e]...)
		}
		if i > s && r.q[i-1] == ' ' {
			i-- // a SP before a tab starts the run
		}
		j := i + 1
		for j < e && isWSP(r.q[j]) {
			j++
		}
		dst = append(append(dst, r.q[s:i]...), ' ')
		s = j
	}
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
	if bp := c.bufp; bp != nil {
		// Later writes, if any, go straight to w (emit with no buffer).
		*bp = c.buf[:0]
		c.bufp, c.buf = nil, nil
		canonBufs.Put(bp)
	}
	return c.err
}

var (
	crlf   = []byte("\r\n")
	sp     = []byte(" ")
	crOnly = []byte("\r")
	dblSP  = []byte("  ")
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

// appendCanonicalHeader appends canonicalHeader(c, raw) to dst.
func appendCanonicalHeader(dst []byte, c Canonicalization, raw []byte) []byte {
	if c == Simple {
		return append(dst, raw...)
	}
	return appendRelaxedHeader(dst, raw)
}

// relaxedHeader implements RFC 6376 §3.4.2: lower-case name, unfolded value,
// white-space runs reduced to one SP, none at the end or around the colon.
func relaxedHeader(raw []byte) []byte {
	return appendRelaxedHeader(make([]byte, 0, len(raw)), raw)
}

// appendRelaxedHeader appends relaxedHeader(raw) to dst.
func appendRelaxedHeader(out, raw []byte) []byte {
	colon := bytes.IndexByte(raw, ':')
	if colon < 0 {
		colon = len(raw)
	}
	name := bytes.TrimRight(raw[:colon], " \t")
	for _, b := range name {
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		out = append(out, b)
	}
	out = append(out, ':')
	// The value: runs of SP, HTAB, CR and LF become one SP between content
	// and nothing at either end, CR and LF alone nothing (RFC 6376 §3.4.2
	// b-e). A single SP between content is kept as it is, so the value is
	// copied in long stretches, not word by word.
	v := raw[min(colon+1, len(raw)):]
	first := true
	for len(v) > 0 {
		// A run of white space and line ends.
		wsp, j := false, 0
		for ; j < len(v) && headerWSP[v[j]]; j++ {
			wsp = wsp || v[j] == ' ' || v[j] == '\t'
		}
		v = v[j:]
		if len(v) == 0 {
			break
		}
		if wsp && !first {
			out = append(out, ' ')
		}
		first = false
		// Content up to the next run, a single SP followed by content
		// included.
		i := 0
		for i < len(v) {
			if !headerWSP[v[i]] || (v[i] == ' ' && i+1 < len(v) && !headerWSP[v[i+1]]) {
				i++
				continue
			}
			break
		}
		out = append(out, v[:i]...)
		v = v[i:]
	}
	return append(out, crlf...)
}

// headerWSP marks the bytes relaxed header canonicalization removes or
// reduces: SP, HTAB, CR and LF.
var headerWSP = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}
