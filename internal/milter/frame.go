package milter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// ErrMalformedPacket is a milter packet that breaks the protocol's framing
// or the layout of its command. The connection is closed.
var ErrMalformedPacket = errors.New("milter: malformed packet")

// packetReader sits between the MTA's connection and go-milter's session,
// which reads one packet at a time straight from the connection. It checks
// each packet before passing it on: go-milter v0.10.2 indexes a packet's
// first byte and the parts of a connect, MAIL or RCPT command without
// checking they are there, so a zero length, a connect without a family,
// or a MAIL without its NUL would panic in the library's own goroutine and
// end the process. It also bounds a packet far below the library's
// 512 MiB, which a peer could otherwise make dkimd allocate per
// connection.
//
// A packet whose layout needs checking (checkPacket) is read whole first.
// Any other, a body chunk above all, is passed on as it arrives once its
// length and command are checked: go-milter reads its data straight from
// the buffered connection, one copy fewer than reading it here first.
//
// It also takes the cost out of how go-milter v0.10.2 writes and times
// out: a reply's head and data, which it writes with two calls, go out
// in one system call, and the header fields to insert with the reply that
// ends the message (Write); and the deadlines it sets and clears around
// every packet move the connection's own deadline only when they would
// leave it off by more than deadlineSlack (lazyDeadline).
type packetReader struct {
	net.Conn
	// br reads the connection in large pieces: the length, command and
	// data of a packet, and often several small packets (header fields,
	// macros), come with one system call instead of two a packet.
	br      *bufio.Reader
	max     int
	log     *slog.Logger
	pending []byte // checked bytes not yet read
	stream  int    // bytes of the current packet still to come from br
	head    [5]byte
	buf     []byte
	err     error

	// out holds what is written until it goes out in one system call:
	// a packet's head until its data follows (go-milter writes the two
	// separately), a message's modifications until the reply that ends
	// it. want is the length of the data the last head announced.
	out  []byte
	want int

	rdl, wdl lazyDeadline
}

// Read implements io.Reader with the connection's deadlines.
func (r *packetReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.pending) == 0 && r.err != nil {
		return 0, r.err
	}
	if len(r.pending) == 0 && r.stream == 0 {
		if err := r.next(); err != nil {
			return 0, r.fail(err)
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	if len(r.pending) > 0 || r.stream == 0 {
		return n, nil
	}
	// The data of a passed-on packet: what br holds already joins the
	// head in this call; otherwise read on only if nothing was copied.
	want := min(len(p)-n, r.stream)
	if n > 0 {
		want = min(want, r.br.Buffered())
		if want == 0 {
			return n, nil
		}
	}
	if err := r.rdl.sync(r.Conn.SetReadDeadline); err != nil {
		return n, r.fail(err)
	}
	m, err := r.br.Read(p[n : n+want])
	r.stream -= m
	n += m
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if n > 0 {
			r.err = err
			return n, nil
		}
		return 0, r.fail(err)
	}
	return n, nil
}

// fail makes err the reader's last word, logging a malformed packet.
func (r *packetReader) fail(err error) error {
	r.err = err
	if errors.Is(err, ErrMalformedPacket) && r.log != nil {
		r.log.Warn("milter_malformed_packet", "remote", remoteName(r.Conn), "err", err.Error())
	}
	return err
}

// next reads and checks the next packet's head, and the whole packet if
// its layout is to be checked, into r.pending.
func (r *packetReader) next() error {
	if r.br == nil {
		r.br = bufio.NewReaderSize(r.Conn, 4<<10)
	}
	if err := r.flush(); err != nil {
		return err
	}
	if err := r.rdl.sync(r.Conn.SetReadDeadline); err != nil {
		return err
	}
	if _, err := io.ReadFull(r.br, r.head[:4]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(r.head[:4])
	if n == 0 {
		return fmt.Errorf("%w: length 0 (a packet holds at least its command byte)", ErrMalformedPacket)
	}
	if uint64(n) > uint64(r.max) {
		return fmt.Errorf("%w: length %d, more than the %d bytes allowed", ErrMalformedPacket, n, r.max)
	}
	code, err := r.br.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	r.head[4] = code
	if !layoutChecked(code) {
		r.pending = r.head[:]
		r.stream = int(n) - 1
		return nil
	}
	if cap(r.buf) < 4+int(n) {
		r.buf = make([]byte, 4+int(n))
	}
	b := r.buf[:4+int(n)]
	copy(b, r.head[:])
	if _, err := io.ReadFull(r.br, b[5:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if err := checkPacket(b[4], b[5:]); err != nil {
		return err
	}
	r.pending = b
	return nil
}

// maxJoined bounds what Write holds in out; a longer packet (never one
// of dkimd's) goes out as written.
const maxJoined = 64 << 10

// Write sends the packets go-milter v0.10.2 writes with fewer system
// calls, byte for byte the same. It writes a packet as its 5-byte head,
// then, if there is any, its data: the head is held until the data comes.
// A modification (the DKIM-Signature fields to insert) is held until the
// next packet, which is the reply that ends the message (the MTA answers
// neither); anything held goes out before the next read at the latest.
func (r *packetReader) Write(p []byte) (int, error) {
	if err := r.wdl.sync(r.Conn.SetWriteDeadline); err != nil {
		return 0, err
	}
	if r.want > 0 {
		if len(p) != r.want || len(r.out)+len(p) > maxJoined {
			// Not the data announced, or too long to hold.
			r.want = 0
			if err := r.flush(); err != nil {
				return 0, err
			}
			return r.Conn.Write(p)
		}
		r.want = 0
		r.out = append(r.out, p...)
		if isModification(r.out[len(r.out)-len(p)-1]) {
			return len(p), nil
		}
		if err := r.flush(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(p) == 5 && binary.BigEndian.Uint32(p) > 1 && len(r.out)+len(p) <= maxJoined {
		r.out = append(r.out, p...)
		r.want = int(binary.BigEndian.Uint32(p)) - 1
		return len(p), nil
	}
	if len(r.out) == 0 {
		return r.Conn.Write(p)
	}
	if len(r.out)+len(p) > maxJoined {
		if err := r.flush(); err != nil {
			return 0, err
		}
		return r.Conn.Write(p)
	}
	r.out = append(r.out, p...)
	if err := r.flush(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes out what is held.
func (r *packetReader) flush() error {
	if len(r.out) == 0 {
		return nil
	}
	_, err := r.Conn.Write(r.out)
	r.out = r.out[:0]
	r.want = 0
	return err
}

// isModification reports whether a milter reply code is a modification
// action (libmilter's SMFIR_ADDRCPT ... SMFIR_ADDRCPT_PAR), which the MTA
// does not answer and which a final reply always follows.
func isModification(code byte) bool {
	switch code {
	case '+', '-', 'b', 'h', 'm', 'i', 'q', 'e', '2':
		return true
	}
	return false
}

// deadlineSlack is how much later than asked a connection's deadline may
// fall, so that it moves at most about once a second however often
// go-milter sets it.
const deadlineSlack = time.Second

// SetDeadline implements net.Conn.
func (r *packetReader) SetDeadline(t time.Time) error {
	if err := r.SetReadDeadline(t); err != nil {
		return err
	}
	return r.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn, lazily (lazyDeadline).
func (r *packetReader) SetReadDeadline(t time.Time) error {
	return r.rdl.set(t, r.Conn.SetReadDeadline)
}

// SetWriteDeadline implements net.Conn, lazily (lazyDeadline).
func (r *packetReader) SetWriteDeadline(t time.Time) error {
	return r.wdl.set(t, r.Conn.SetWriteDeadline)
}

// lazyDeadline is a deadline of the connection that is moved only when
// the one asked for is later than it, or earlier by more than
// deadlineSlack; then to the one asked for plus deadlineSlack. A deadline
// cleared is cleared on the connection only before the next read or write
// that finds no new one set (go-milter clears after every packet and sets
// again before the next). So an I/O call times out between the deadline
// asked for and deadlineSlack after it, never before. Not safe for
// concurrent use, like go-milter's session.
type lazyDeadline struct {
	want, real time.Time
}

func (d *lazyDeadline) set(t time.Time, apply func(time.Time) error) error {
	d.want = t
	if t.IsZero() {
		return nil
	}
	if !d.real.IsZero() && !t.After(d.real) && d.real.Sub(t) <= deadlineSlack {
		return nil
	}
	real := t.Add(deadlineSlack)
	if err := apply(real); err != nil {
		d.real = time.Time{}
		return err
	}
	d.real = real
	return nil
}

// sync clears the connection's deadline if the last one asked for was
// none.
func (d *lazyDeadline) sync(apply func(time.Time) error) error {
	if d.want.IsZero() && !d.real.IsZero() {
		if err := apply(time.Time{}); err != nil {
			return err
		}
		d.real = time.Time{}
	}
	return nil
}

// layoutChecked reports whether checkPacket looks into a command's data.
func layoutChecked(code byte) bool {
	switch code {
	case 'C', 'M', 'R', 'D':
		return true
	}
	return false
}

// checkPacket checks what go-milter takes for granted in a command's data
// (libmilter's mfdef.h and milter-protocol.txt give the layouts).
func checkPacket(code byte, data []byte) error {
	switch code {
	case 'C': // SMFIC_CONNECT: hostname NUL, family, [port(2) address NUL]
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			return fmt.Errorf("%w: connect: host name without NUL", ErrMalformedPacket)
		}
		rest := data[i+1:]
		if len(rest) == 0 {
			return fmt.Errorf("%w: connect: no address family", ErrMalformedPacket)
		}
		if f := rest[0]; (f == 'L' || f == '4' || f == '6') && len(rest) < 3 {
			return fmt.Errorf("%w: connect: no port", ErrMalformedPacket)
		}
	case 'M', 'R': // SMFIC_MAIL, SMFIC_RCPT: address NUL, [esmtp args NUL]...
		if bytes.IndexByte(data, 0) < 0 {
			return fmt.Errorf("%w: %c: address without NUL", ErrMalformedPacket, code)
		}
	case 'D': // SMFIC_MACRO: the command it is for, then name NUL value NUL...
		if len(data) == 0 {
			return fmt.Errorf("%w: macro: no command", ErrMalformedPacket)
		}
	}
	return nil
}

func remoteName(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "local"
}

// guardListener wraps each accepted connection in a packetReader. A milter
// exchange is many small request/reply packets, each one waiting on the
// last: it needs TCP_NODELAY, which Go sets on every TCP connection it
// accepts (net.TCPConn.SetNoDelay: the default is no delay), so it is not
// set again here, a system call per connection.
type guardListener struct {
	net.Listener
	max int
	log *slog.Logger
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &packetReader{Conn: c, max: l.max, log: l.log}, nil
}
