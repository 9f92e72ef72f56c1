package milter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// bytesConn is a net.Conn that reads from a byte slice, a few bytes at a
// time, as a socket may deliver them.
type bytesConn struct {
	net.Conn
	r    *bytes.Reader
	step int
}

func (c *bytesConn) Read(p []byte) (int, error) {
	if c.step > 0 && len(p) > c.step {
		p = p[:c.step]
	}
	return c.r.Read(p)
}

// readLikeGoMilter reads one packet the way go-milter v0.10.2's
// wire.ReadPacket and serverSession.processMsg do, with the same
// unchecked indexing: if the packetReader lets a packet through, this
// must not panic.
func readLikeGoMilter(r io.Reader) ([]byte, error) {
	var length uint32
	if err := binary.Read(r, binary.BigEndian, &length); err != nil {
		return nil, err
	}
	data := make([]byte, length)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	code, rest := data[0], data[1:]
	switch code {
	case 'C':
		host := cstring(rest)
		rest = rest[len(host)+1:]
		family := rest[0]
		rest = rest[1:]
		if family == 'L' || family == '4' || family == '6' {
			_ = binary.BigEndian.Uint16(rest)
		}
	case 'M', 'R':
		from := cstring(rest)
		_ = rest[len(from)+1:]
	case 'D':
		_ = rest[1:]
	}
	return data, nil
}

func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func packet(code byte, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
	return append(append(b, code), data...)
}

// FuzzPacketReader: whatever the MTA's side of the socket sends, what
// passes the packetReader never panics go-milter's parsing, a stream of
// well-formed packets passes unchanged, and a malformed one is
// ErrMalformedPacket.
func FuzzPacketReader(f *testing.F) {
	f.Add(packet('O', "\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff"), 0)
	f.Add(bytes.Join([][]byte{packet('C', "host\x004\x00\x19192.0.2.1\x00"), packet('M', "<a@b>\x00SIZE=1\x00"), packet('B', "body")}, nil), 3)
	f.Add([]byte{0, 0, 0, 0}, 1)
	f.Add(packet('C', "host\x00"), 2)
	f.Add(packet('M', "<a>"), 0)
	f.Add(packet('D', ""), 0)
	f.Add(packet('L', "Subject\x00 hi\x00"), 5)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		pr := &packetReader{Conn: &bytesConn{r: bytes.NewReader(in), step: step % 7}, max: 1 << 16}
		var out []byte
		for {
			p, err := readLikeGoMilter(pr)
			if err != nil {
				if !errors.Is(err, ErrMalformedPacket) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v", err)
				}
				break
			}
			out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
			out = append(out, p...)
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("packets changed on the way: in %q, out %q", in, out)
		}
	})
}

func TestPacketReaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"well-formed", packet('B', "x"), io.EOF},
		{"zero length", []byte{0, 0, 0, 0}, ErrMalformedPacket},
		{"over the limit", []byte{0, 1, 0, 1, 'B'}, ErrMalformedPacket},
		{"cut short", []byte{0, 0, 0, 9, 'B'}, io.ErrUnexpectedEOF},
		{"body cut short", packet('B', "body")[:7], io.ErrUnexpectedEOF},
		{"header cut short", packet('L', "Subject\x00 hi\x00")[:9], io.ErrUnexpectedEOF},
		{"cut short before the command", []byte{0, 0, 0, 9}, io.ErrUnexpectedEOF},
		{"connect without family", packet('C', "h\x00"), ErrMalformedPacket},
		{"connect without port", packet('C', "h\x006\x00"), ErrMalformedPacket},
		{"connect, unknown family, no port needed", packet('C', "h\x00U"), io.EOF},
		{"MAIL without NUL", packet('M', "<a>"), ErrMalformedPacket},
		{"macro without command", packet('D', ""), ErrMalformedPacket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := &packetReader{Conn: &bytesConn{r: bytes.NewReader(tc.in)}, max: 1 << 16}
			var err error
			for err == nil {
				_, err = readLikeGoMilter(pr)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendCRLF(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"\n", "\r\n"},
		{"a\r\n\nb", "a\r\n\r\nb"},
	} {
		if got := string(appendCRLF(nil, tc.in)); got != tc.want {
			t.Errorf("appendCRLF(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A body chunk reaches go-milter unchanged however the socket splits it,
// and is read straight from the connection's buffer, never gathered in
// the packetReader's own (one copy fewer per chunk).
func TestPacketReaderBodyPassedThrough(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef\r\n"), 64<<10/18)
	in := bytes.Join([][]byte{packet('L', "Subject\x00 hi\x00"), packet('B', string(body)), packet('E', ""), packet('M', "<a@b>\x00")}, nil)
	for _, step := range []int{0, 1, 7, 4096, 5000} {
		pr := &packetReader{Conn: &bytesConn{r: bytes.NewReader(in), step: step}, max: 1 << 17}
		var out []byte
		for {
			p, err := readLikeGoMilter(pr)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if p[0] == 'B' && !bytes.Equal(p[1:], body) {
				t.Fatalf("step %d: body chunk changed", step)
			}
			out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
			out = append(out, p...)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("step %d: packets changed on the way", step)
		}
		if cap(pr.buf) >= len(body) {
			t.Errorf("step %d: the body chunk was buffered whole (buffer of %d bytes)", step, cap(pr.buf))
		}
	}
}

// A packet longer than the limit is refused from its length alone,
// whether it is one that is passed through (a body chunk) or checked
// first: nothing of it reaches go-milter.
func TestPacketReaderOverLimit(t *testing.T) {
	for _, code := range []byte{'B', 'L', 'M', 'C'} {
		in := packet(code, strings.Repeat("x", 1000))
		pr := &packetReader{Conn: &bytesConn{r: bytes.NewReader(in)}, max: 999}
		n, err := pr.Read(make([]byte, 4))
		if !errors.Is(err, ErrMalformedPacket) || n != 0 {
			t.Errorf("%c of 1001 bytes, limit 999: read %d bytes, error %v", code, n, err)
		}
	}
}

// recordConn records each Write on it (one system call each) and reads
// from r.
type recordConn struct {
	net.Conn
	r      io.Reader
	writes [][]byte
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

func (c *recordConn) SetReadDeadline(time.Time) error { return nil }

// writeLikeGoMilter writes a packet as go-milter v0.10.2's
// wire.WritePacket does: its head, then its data if any.
func writeLikeGoMilter(w io.Writer, code byte, data []byte) error {
	l := len(data) + 1
	if _, err := w.Write([]byte{byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l), code}); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	_, err := w.Write(data)
	return err
}

// Replies go out with as few writes as the protocol allows, byte for byte
// as go-milter writes them: a packet's head with its data, the header
// fields to insert with the reply that ends the message; a reply the MTA
// waits for at once.
func TestPacketWriterJoinsReplies(t *testing.T) {
	ins := "\x00\x00\x00\x00DKIM-Signature\x00 v=1; a=ed25519-sha256\x00"
	type pkt struct {
		code byte
		data string
	}
	for _, tc := range []struct {
		name   string
		pkts   []pkt
		writes [][]byte
	}{
		{"negotiation reply", []pkt{{'O', "\x00\x00\x00\x06..."}}, [][]byte{packet('O', "\x00\x00\x00\x06...")}},
		{"continue", []pkt{{'c', ""}}, [][]byte{packet('c', "")}},
		{"reply code", []pkt{{'y', "451 4.3.0 try again\x00"}}, [][]byte{packet('y', "451 4.3.0 try again\x00")}},
		{"signed: two fields and accept", []pkt{{'i', ins}, {'i', ins}, {'a', ""}},
			[][]byte{bytes.Join([][]byte{packet('i', ins), packet('i', ins), packet('a', "")}, nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recordConn{}
			pr := &packetReader{Conn: rc}
			for _, p := range tc.pkts {
				if err := writeLikeGoMilter(pr, p.code, []byte(p.data)); err != nil {
					t.Fatal(err)
				}
			}
			if len(rc.writes) != len(tc.writes) {
				t.Fatalf("%d writes %q, want %d %q", len(rc.writes), rc.writes, len(tc.writes), tc.writes)
			}
			for i := range tc.writes {
				if !bytes.Equal(rc.writes[i], tc.writes[i]) {
					t.Errorf("write %d: %q, want %q", i, rc.writes[i], tc.writes[i])
				}
			}
		})
	}

	// A head followed by something other than its data, or by more than
	// is held, goes out as written.
	head := append(binary.BigEndian.AppendUint32(nil, maxJoined+2), 'b')
	for _, data := range [][]byte{[]byte("short"), bytes.Repeat([]byte("x"), maxJoined+1)} {
		rc := &recordConn{}
		pr := &packetReader{Conn: rc}
		for _, p := range [][]byte{head, data} {
			if n, err := pr.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
		}
		if got := bytes.Join(rc.writes, nil); !bytes.Equal(got, append(head, data...)) || len(rc.writes) != 2 {
			t.Errorf("%d bytes of data: %d writes", len(data), len(rc.writes))
		}
	}

	// Whatever is held goes out before the packet reader waits for the
	// MTA.
	rc := &recordConn{r: bytes.NewReader(packet('A', ""))}
	pr := &packetReader{Conn: rc, max: 1 << 10}
	if err := writeLikeGoMilter(pr, 'i', []byte(ins)); err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Read(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if len(rc.writes) != 1 || !bytes.Equal(rc.writes[0], packet('i', ins)) {
		t.Errorf("before a read: writes %q, want the field to insert", rc.writes)
	}
}

// deadlineConn counts the deadlines set on it.
type deadlineConn struct {
	net.Conn
	read []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.read = append(c.read, t)
	return nil
}

// The deadline go-milter sets and clears around every packet moves the
// connection's at most once per deadlineSlack, never earlier than asked,
// and at most deadlineSlack later; a deadline cleared is cleared before
// the next read that sets none.
func TestLazyDeadline(t *testing.T) {
	dc := &deadlineConn{}
	pr := &packetReader{Conn: dc, max: 1 << 10}
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	var real time.Time
	for i := range 100 {
		want := now.Add(time.Duration(i) * 100 * time.Millisecond).Add(time.Minute)
		if err := pr.SetReadDeadline(want); err != nil {
			t.Fatal(err)
		}
		if len(dc.read) > 0 {
			real = dc.read[len(dc.read)-1]
		}
		if real.Before(want) || real.Sub(want) > deadlineSlack {
			t.Fatalf("asked for %v, connection's is %v", want, real)
		}
		if err := pr.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(dc.read); n > 11 {
		t.Errorf("deadline moved %d times in 10 s of packets", n)
	}
	pr.br = bufio.NewReader(bytes.NewReader(packet('N', "")))
	if _, err := pr.Read(make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if last := dc.read[len(dc.read)-1]; !last.IsZero() {
		t.Errorf("read with no deadline asked for ran under %v", last)
	}
}
