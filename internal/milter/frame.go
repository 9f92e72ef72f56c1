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
)

// ErrMalformedPacket is a milter packet that breaks the protocol's framing
// or the layout of its command. The connection is closed.
var ErrMalformedPacket = errors.New("milter: malformed packet")

// packetReader sits between the MTA's connection and go-milter's session,
// which reads one packet at a time straight from the connection. It reads
// each packet whole, checks it, and only then passes it on: go-milter
// v0.10.2 indexes a packet's first byte and the parts of a connect, MAIL or
// RCPT command without checking they are there, so a zero length, a
// connect without a family, or a MAIL without its NUL would panic in the
// library's own goroutine and end the process. It also bounds a packet far
// below the library's 512 MiB, which a peer could otherwise make dkimd
// allocate per connection.
type packetReader struct {
	net.Conn
	// br reads the connection in large pieces: the length, command and
	// data of a packet, and often several small packets (header fields,
	// macros), come with one system call instead of two a packet.
	br      *bufio.Reader
	max     int
	log     *slog.Logger
	pending []byte // checked bytes not yet read
	buf     []byte
	err     error
}

// Read implements io.Reader with the connection's deadlines.
func (r *packetReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.next(); err != nil {
			r.err = err
			if errors.Is(err, ErrMalformedPacket) && r.log != nil {
				r.log.Warn("milter_malformed_packet", "remote", remoteName(r.Conn), "err", err.Error())
			}
			return 0, err
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// next reads and checks one packet into r.pending.
func (r *packetReader) next() error {
	if r.br == nil {
		r.br = bufio.NewReaderSize(r.Conn, 4<<10)
	}
	var lb [4]byte
	if _, err := io.ReadFull(r.br, lb[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n == 0 {
		return fmt.Errorf("%w: length 0 (a packet holds at least its command byte)", ErrMalformedPacket)
	}
	if uint64(n) > uint64(r.max) {
		return fmt.Errorf("%w: length %d, more than the %d bytes allowed", ErrMalformedPacket, n, r.max)
	}
	if cap(r.buf) < 4+int(n) {
		r.buf = make([]byte, 4+int(n))
	}
	b := r.buf[:4+int(n)]
	copy(b, lb[:])
	if _, err := io.ReadFull(r.br, b[4:]); err != nil {
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

// guardListener wraps each accepted connection in a packetReader, and sets
// TCP_NODELAY (Go's default, made explicit): a milter exchange is many
// small request/reply packets, each one waiting on the last.
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
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			l.log.Warn("milter_nodelay_failed", "err", err.Error())
		}
	}
	return &packetReader{Conn: c, max: l.max, log: l.log}, nil
}
