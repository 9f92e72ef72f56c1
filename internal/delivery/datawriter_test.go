package delivery

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net/textproto"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
)

// textprotoDot is what go-smtp's DataCommand writes for chunks: the
// reference dataWriter must match byte for byte.
func textprotoDot(chunks [][]byte) string {
	var conn bytes.Buffer
	bw := bufio.NewWriter(&conn)
	d := textproto.NewWriter(bw).DotWriter()
	for _, c := range chunks {
		if _, err := d.Write(c); err != nil {
			panic(err) // a bytes.Buffer does not fail
		}
	}
	if err := d.Close(); err != nil {
		panic(err)
	}
	return conn.String()
}

// countWriter counts what goes through it.
type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return c.w.Write(p)
}

// chunkReader returns its chunks one Read at a time (at most len(p) of
// each), and then io.EOF.
type chunkReader struct{ chunks [][]byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	return n, nil
}

// viaDataWriter writes chunks as transactOn does: through a dataWriter to
// a connection, with the DataCommand's dotWriter (over a buffered writer
// on the same connection) as its tail, then closes that dotWriter. It
// returns what reached the connection and how much went through the tail.
func viaDataWriter(t testing.TB, chunks [][]byte, maxHold, outSize int, readFrom bool) (string, int) {
	t.Helper()
	var conn bytes.Buffer
	bw := bufio.NewWriter(&conn)
	dot := textproto.NewWriter(bw).DotWriter()
	tail := &countWriter{w: dot}
	w := &dataWriter{conn: &conn, tail: tail, out: make([]byte, 0, outSize), in: make([]byte, 7), maxHold: maxHold}
	if readFrom {
		if _, err := w.ReadFrom(&chunkReader{chunks: chunks}); err != nil {
			t.Fatal(err)
		}
	} else {
		for _, c := range chunks {
			if n, err := w.Write(c); n != len(c) || err != nil {
				t.Fatalf("Write = %d, %v for %d bytes", n, err, len(c))
			}
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	if err := dot.Close(); err != nil {
		t.Fatal(err)
	}
	return conn.String(), tail.n
}

// splits returns ways to cut s into chunks: whole, at every point, and a
// byte at a time.
func splits(s string) [][][]byte {
	b := []byte(s)
	out := [][][]byte{{b}}
	for i := 0; i <= len(b); i++ {
		out = append(out, [][]byte{b[:i], b[i:]})
	}
	var one [][]byte
	for i := range b {
		one = append(one, b[i:i+1])
	}
	return append(out, one)
}

// TestDataWriterMatchesTextproto checks the cases where dot-stuffing is
// easy to get wrong, each cut in every way and with long-line cuts forced
// (small maxHold), against net/textproto's dotWriter and against the bytes
// it is known to write.
func TestDataWriterMatchesTextproto(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"lines in CRLF go out as they are", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"empty body: CRLF before the dot (textproto)", "", "\r\n.\r\n"},
		{"no final line end: CRLF added", "a\r\nb", "a\r\nb\r\n.\r\n"},
		{"leading dot doubled (RFC 5321 §4.5.2)", ".a\r\n", "..a\r\n.\r\n"},
		{"a lone dot line doubled", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
		{"dot in mid-line left alone", "a.b\r\n", "a.b\r\n.\r\n"},
		{"dot first of all", ".", "..\r\n.\r\n"},
		{"dots after dots", "..\r\n...", "...\r\n....\r\n.\r\n"},
		{"bare LF becomes CRLF", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"bare LF at line start", "a\r\n\n\n", "a\r\n\r\n\r\n.\r\n"},
		{"dot after bare LF doubled", "a\n.b\n", "a\r\n..b\r\n.\r\n"},
		{"bare CR passes", "a\rb\r\n", "a\rb\r\n.\r\n"},
		{"dot after bare CR not doubled", "a\r.b\r\n", "a\r.b\r\n.\r\n"},
		{"CR CR LF: the second CR does not count (textproto)", "a\r\r\n", "a\r\r\r\n.\r\n"},
		{"CR CR CR LF", "a\r\r\r\n", "a\r\r\r\n.\r\n"},
		{"ends in CR: LF added", "a\r", "a\r\n.\r\n"},
		{"ends in CR CR", "a\r\r", "a\r\r\r\n.\r\n"},
		{"ends in CRLF CR", "a\r\n\r", "a\r\n\r\n.\r\n"},
		{"only CRLF", "\r\n", "\r\n.\r\n"},
		{"only LF", "\n", "\r\n.\r\n"},
		{"only CR", "\r", "\r\n.\r\n"},
		{"LF CR", "\n\r", "\r\n\r\n.\r\n"},
		{"CR dot at line start", "\r.\r\n", "\r.\r\n.\r\n"},
		{"dot line ending in bare LF", ".\n", "..\r\n.\r\n"},
		{"long line of dots", "x" + strings.Repeat(".", 40) + "\r\n", "x" + strings.Repeat(".", 40) + "\r\n.\r\n"},
		{"long dot-stuffed line of dots", strings.Repeat(".", 40), "." + strings.Repeat(".", 40) + "\r\n.\r\n"},
		{"long line of CRs, even: one added", "a" + strings.Repeat("\r", 40) + "\n", "a" + strings.Repeat("\r", 41) + "\n.\r\n"},
		{"long line of CRs, odd: as it is", "a" + strings.Repeat("\r", 41) + "\n", "a" + strings.Repeat("\r", 41) + "\n.\r\n"},
		{"long line of CR dot", strings.Repeat("\r.", 20), strings.Repeat("\r.", 20) + "\r\n.\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := textprotoDot([][]byte{[]byte(tc.in)}); got != tc.want {
				t.Fatalf("textproto writes %q, the table says %q", got, tc.want)
			}
			for _, chunks := range splits(tc.in) {
				for _, maxHold := range []int{1, 2, 3, 8, dataMaxHold} {
					for _, readFrom := range []bool{false, true} {
						c := make([][]byte, len(chunks))
						for i := range chunks {
							c[i] = bytes.Clone(chunks[i])
						}
						got, _ := viaDataWriter(t, c, maxHold, 4, readFrom)
						if got != tc.want {
							t.Fatalf("chunks %q, maxHold %d, ReadFrom %v: wrote %q, want %q", chunks, maxHold, readFrom, got, tc.want)
						}
					}
				}
			}
		})
	}
}

// TestDataWriterHoldsBackOnlyTheLastLine: an ordinary message goes to the
// connection directly but for its last line, which the DataCommand gets.
func TestDataWriterHoldsBackOnlyTheLastLine(t *testing.T) {
	body := testMessage(10 << 10)
	last := len(body) - bytes.LastIndexByte(body[:len(body)-1], '\n') - 1
	var chunks [][]byte
	for b := body; len(b) > 0; {
		n := min(len(b), 1000)
		chunks = append(chunks, b[:n])
		b = b[n:]
	}
	for _, readFrom := range []bool{false, true} {
		got, tail := viaDataWriter(t, chunks, dataMaxHold, dataOutSize, readFrom)
		if got != string(body)+".\r\n" {
			t.Fatalf("ReadFrom %v: wrote something else than the body and the dot", readFrom)
		}
		if tail != last {
			t.Fatalf("ReadFrom %v: %d bytes through the DataCommand, want %d (the last line)", readFrom, tail, last)
		}
	}
}

// failConn accepts n bytes, then fails.
type failConn struct{ n int }

func (c *failConn) Write(p []byte) (int, error) {
	if len(p) > c.n {
		k := c.n
		c.n = 0
		return k, errBrokenPipe
	}
	c.n -= len(p)
	return len(p), nil
}

var errBrokenPipe = errors.New("broken pipe")

// TestDataWriterConnFails: once a write to the connection fails, the
// writer fails from then on, and passes nothing to the DataCommand, so
// the caller can leave without the final dot (RFC 5321 §4.1.1.4: the
// server then drops the message).
func TestDataWriterConnFails(t *testing.T) {
	body := testMessage(300 << 10)
	tail := &countWriter{w: io.Discard}
	w := &dataWriter{conn: &failConn{n: 100 << 10}, tail: tail, out: make([]byte, 0, dataOutSize), in: make([]byte, dataInSize), maxHold: dataMaxHold}
	_, err := io.Copy(w, onlyReader{bytes.NewReader(body)})
	if !errors.Is(err, errBrokenPipe) {
		t.Fatalf("io.Copy = %v, want the connection's error", err)
	}
	if _, err := w.Write([]byte("more\r\n")); !errors.Is(err, errBrokenPipe) {
		t.Fatalf("Write after the failure = %v, want the connection's error", err)
	}
	if err := w.finish(); !errors.Is(err, errBrokenPipe) {
		t.Fatalf("finish = %v, want the connection's error", err)
	}
	if tail.n != 0 {
		t.Fatalf("%d bytes went to the DataCommand after the connection failed", tail.n)
	}
}

// TestDataWriterEndToEnd sends a large message with lines that need
// dot-stuffing to a real sink, in plaintext and over TLS (where the body
// must go to the TLS connection, not the socket under it), and expects it
// back unchanged once the sink has undone the stuffing.
func TestDataWriterEndToEnd(t *testing.T) {
	serverTLS, clientTLS := deliverytest.TLSConfigs(t)
	var b bytes.Buffer
	for i, line := range bytes.SplitAfter(testMessage(300<<10), []byte("\r\n")) {
		if i%500 == 99 {
			b.WriteString(".\r\n..dots\r\n")
		}
		b.Write(line)
	}
	b.WriteString(".last line starts with a dot\r\n")
	body := b.String()
	tests := []struct {
		name string
		sink deliverytest.SinkOptions
		opts func(*Options)
		// The sink counts sessions: the server starts a new one after
		// STARTTLS (RFC 3207 §4.2), so one connection makes two.
		sessions int
	}{
		{"plaintext", deliverytest.SinkOptions{}, nil, 1},
		{"STARTTLS", deliverytest.SinkOptions{TLSConfig: serverTLS},
			func(o *Options) { o.SmartHostTLS, o.TLSConfig = TLSRequired, clientTLS }, 2},
		{"implicit TLS", deliverytest.SinkOptions{TLSConfig: serverTLS, ImplicitTLS: true},
			func(o *Options) { o.SmartHostTLS, o.TLSConfig = TLSImplicit, clientTLS }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Concurrency = 1 })
			sink := deliverytest.NewSink(t, tc.sink)
			opts := e.d.opts
			opts.SmartHost = sink.Addr
			if tc.opts != nil {
				tc.opts(&opts)
			}
			e.d = NewDeliverer(e.sp, opts)
			for range 2 { // the second on the cached connection
				e.enqueue("alice@sender.test", []string{"bob@rcpt.test"}, body)
			}
			e.runOnce()
			got := sink.Delivered()
			if len(got) != 2 {
				t.Fatalf("sink got %d messages, want 2", len(got))
			}
			for _, r := range got {
				if string(r.Data) != body {
					t.Fatalf("sink got %d bytes, not the %d sent", len(r.Data), len(body))
				}
			}
			if n := sink.Conns(); n != tc.sessions {
				t.Fatalf("%d sessions, want %d (one connection)", n, tc.sessions)
			}
		})
	}
}

// FuzzDataWriter: for any input, cut into chunks anywhere, with any
// long-line limit and output buffer size, a dataWriter and the DataCommand
// after it write what net/textproto's dotWriter alone writes, terminator
// included.
func FuzzDataWriter(f *testing.F) {
	f.Add([]byte("a\r\n.b\r\n"), []byte{3}, uint8(0), uint8(0), false)
	f.Add([]byte("a\r\r\n\n.\r.\r"), []byte{1, 1, 0, 2}, uint8(1), uint8(1), true)
	f.Add([]byte("x........\r\r\r"), []byte{2, 5}, uint8(2), uint8(3), false)
	f.Add([]byte(""), []byte{}, uint8(0), uint8(0), true)
	f.Add(testMessage(2000), []byte{200, 7, 255}, uint8(100), uint8(250), false)
	f.Fuzz(func(t *testing.T, data, cuts []byte, maxHold, outSize uint8, readFrom bool) {
		var chunks [][]byte
		rest := data
		for _, c := range cuts {
			n := min(int(c), len(rest))
			chunks = append(chunks, bytes.Clone(rest[:n]))
			rest = rest[n:]
		}
		chunks = append(chunks, bytes.Clone(rest))
		mh := int(maxHold)
		if mh == 0 {
			mh = dataMaxHold
		}
		want := textprotoDot([][]byte{data})
		got, _ := viaDataWriter(t, chunks, mh, int(outSize)+1, readFrom)
		if got != want {
			t.Fatalf("wrote %q, textproto writes %q", got, want)
		}
	})
}

// testMessage returns a message of about size bytes as mail with an
// attachment looks: headers, then base64 in 76-column lines.
func testMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Alice <alice@sender.test>\r\nTo: bob@rcpt.test\r\nSubject: report\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	rng := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 57)
	line := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	for b.Len() < size {
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		base64.StdEncoding.Encode(line, raw)
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// onlyReader hides any WriterTo, as the spool's body reader has none.
type onlyReader struct{ io.Reader }

// BenchmarkDataWriter writes a 200 KiB message as go-smtp's DataCommand
// alone does (textproto) and as transactOn does (dataWriter, then the
// DataCommand for the last line and the dot).
func BenchmarkDataWriter(b *testing.B) {
	body := testMessage(200 << 10)
	b.Run("textproto", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		bw := bufio.NewWriter(io.Discard)
		for b.Loop() {
			d := textproto.NewWriter(bw).DotWriter()
			if _, err := io.Copy(d, onlyReader{bytes.NewReader(body)}); err != nil {
				b.Fatal(err)
			}
			if err := d.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dataWriter", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		bw := bufio.NewWriter(io.Discard)
		var ws dataWriters
		for b.Loop() {
			d := textproto.NewWriter(bw).DotWriter()
			w := ws.get(io.Discard, d)
			if _, err := io.Copy(w, onlyReader{bytes.NewReader(body)}); err != nil {
				b.Fatal(err)
			}
			if err := w.finish(); err != nil {
				b.Fatal(err)
			}
			ws.put(w)
			if err := d.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
