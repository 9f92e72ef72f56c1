package milter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
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

func TestCRLF(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"\n", "\r\n"},
		{"a\r\n\nb", "a\r\n\r\nb"},
	} {
		for step := 1; step <= len(tc.in); step++ {
			var b bytes.Buffer
			c := crlf{w: &b}
			for in := []byte(tc.in); len(in) > 0; {
				n := min(step, len(in))
				if err := c.write(in[:n]); err != nil {
					t.Fatal(err)
				}
				in = in[n:]
			}
			if b.String() != tc.want {
				t.Errorf("%q in steps of %d: %q, want %q", tc.in, step, b.String(), tc.want)
			}
		}
		if got := string(appendCRLF(nil, tc.in)); got != tc.want {
			t.Errorf("appendCRLF(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
