package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

// byteGuard is lineGuard checking byte by byte, as it did before its fast
// path: the reference the fuzz target holds it to.
type byteGuard struct {
	r   io.Reader
	cr  bool
	err error
}

func (g *byteGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n; i++ {
		c := p[i]
		switch {
		case g.cr && c != '\n':
			g.err = fmt.Errorf("%w: CR not followed by LF", errBareLineEnd)
		case c == '\n' && !g.cr:
			g.err = fmt.Errorf("%w: LF without CR", errBareLineEnd)
		case c == 0:
			g.err = fmt.Errorf("%w: NUL byte", errBareLineEnd)
		}
		if g.err != nil {
			return i, g.err
		}
		g.cr = c == '\r'
	}
	if err == io.EOF && g.cr {
		g.err = fmt.Errorf("%w: CR at the end", errBareLineEnd)
		return n, g.err
	}
	return n, err
}

// chunkReader gives data in reads as long as the bytes of cuts say (0: the
// whole buffer), the last one with io.EOF if eofWithData.
type chunkReader struct {
	data, cuts  []byte
	eofWithData bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.cuts) > 0 {
		if c.cuts[0] > 0 {
			n = min(n, int(c.cuts[0]))
		}
		c.cuts = c.cuts[1:]
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	if len(c.data) == 0 && c.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

// readTrace reads r to the end, noting what each read gave.
func readTrace(r io.Reader) []string {
	var trace []string
	buf := make([]byte, 256)
	for range 10000 {
		n, err := r.Read(buf)
		trace = append(trace, fmt.Sprintf("%q %v", buf[:n], err))
		if err != nil {
			break
		}
	}
	return trace
}

// The fast path of lineGuard passes and refuses exactly what checking
// every byte does, however the message is cut into reads.
func FuzzLineGuard(f *testing.F) {
	for _, seed := range []string{
		"From: a@b.example\r\n\r\nHello.\r\n",
		"a\nb", "a\rb", "a\r", "\r", "\n", "\r\r\n", "\r\n\x00.\r\n", "x\r\n.\n", "ab\r\ncd\r\n\r",
		"bare\nLF\r\n", "bare\rCR\r\n", "\nx\r\n", "x\r\n\x00\r\n", "\r\n\r\n\n",
		strings.Repeat("0123456789abcdef\r\n", 40) + "x\ny",
	} {
		f.Add([]byte(seed), []byte{3, 0, 1}, false)
		f.Add([]byte(seed), []byte{1}, true)
	}
	// A CR at the end of one read, and what follows in the next.
	f.Add([]byte("ab\r\ncd\r\n"), []byte{3}, false)
	f.Add([]byte("ab\rcd\r\n"), []byte{3}, false)
	f.Add([]byte("ab\r\x00d\r\n"), []byte{3}, false)
	f.Fuzz(func(t *testing.T, data, cuts []byte, eofWithData bool) {
		want := readTrace(&byteGuard{r: &chunkReader{data, cuts, eofWithData}})
		got := readTrace(&lineGuard{r: &chunkReader{data, cuts, eofWithData}})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("lineGuard gave\n%q\nchecking every byte gives\n%q", got, want)
		}
	})
}

// A message buffer holds a message in memory up to its limit, in a buffer that
// never grows past it and is kept for the next message; beyond, it moves
// the message to a file, removed at close; a buffer a large header took
// past the limit is not kept.
func TestBufferMemory(t *testing.T) {
	const limit = 1000
	s := &Server{opts: Options{TempDir: t.TempDir(), BufferMemoryBytes: limit}}
	msg := bytes.Repeat([]byte("0123456789abcdefghi\r\n"), 100)
	for _, tc := range []struct {
		name   string
		header int // bytes of msg read as the header
		size   int // of the message
		file   bool
		kept   bool // the buffer goes back to the pool
	}{
		{"under the limit", 84, limit - 1, false, true},
		{"at the limit", 84, limit, false, true},
		{"over the limit", 84, limit + 1, true, true},
		{"header over the limit", limit + 8, 2 * limit, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := msg[:tc.size]
			sp := s.getBuffer()
			h := append(append([]byte(nil), m[:tc.header-2]...), "\r\n"...)
			hdr, err := sp.readHeader(bufio.NewReader(bytes.NewReader(h)), 2*limit)
			if err != nil || !bytes.Equal(hdr, h) {
				t.Fatalf("readHeader: %q, %v", hdr, err)
			}
			if err := sp.hold(); err != nil {
				t.Fatal(err)
			}
			// In small writes, so that the buffer grows often.
			for rest := m[tc.header:]; len(rest) > 0; rest = rest[min(len(rest), 7):] {
				if _, err := sp.Write(rest[:min(len(rest), 7)]); err != nil {
					t.Fatal(err)
				}
			}
			if err := sp.flush(); err != nil {
				t.Fatal(err)
			}
			if (sp.f != nil) != tc.file {
				t.Errorf("in a file: %v, want %v", sp.f != nil, tc.file)
			}
			if sp.f == nil && cap(sp.mem) > limit {
				t.Errorf("buffer grew to %d bytes, over the limit", cap(sp.mem))
			}
			r, err := sp.reader()
			if err != nil {
				t.Fatal(err)
			}
			want := append(h, m[tc.header:]...)
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, want) {
				t.Errorf("read back %d bytes (%v), want the %d written", len(got), err, len(want))
			}
			var name string
			if sp.f != nil {
				name = sp.f.Name()
			}
			if err := sp.close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(name); name != "" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary file left after close: %v", err)
			}
			s.putBuffer(sp)
			if kept := sp.mem != nil; kept != tc.kept {
				t.Errorf("buffer of %d bytes kept: %v, want %v", cap(sp.mem), kept, tc.kept)
			}
		})
	}
}
