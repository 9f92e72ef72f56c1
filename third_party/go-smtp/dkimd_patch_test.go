package smtp

// Tests of dkimd's patch (data.go copyData, lengthlimit_reader.go): the
// fast paths must give exactly what v0.25.1's byte loops gave, for any
// input, however it arrives.

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// refDataRead is v0.25.1's dataReader.Read, byte by byte, with only the
// dot-CR fix (a ".\r" at a line start not followed by "\n" keeps its CR;
// TestDotCRKeepsCR pins that down against v0.25.1's output).
func refDataRead(r *dataReader, b []byte) (n int, err error) {
	if r.limited {
		if r.n <= 0 {
			return 0, ErrDataTooLarge
		}
		if int64(len(b)) > r.n {
			b = b[0:r.n]
		}
	}
	const (
		stateBeginLine = iota
		stateDot
		stateDotCR
		stateCR
		stateData
		stateEOF
	)
	for n < len(b) && r.state != stateEOF {
		var c byte
		c, err = r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			break
		}
		switch r.state {
		case stateBeginLine:
			if c == '.' {
				r.state = stateDot
				continue
			}
			if c == '\r' {
				r.state = stateCR
				break
			}
			r.state = stateData
		case stateDot:
			if c == '\r' {
				r.state = stateDotCR
				continue
			}
			r.state = stateData
		case stateDotCR:
			if c == '\n' {
				r.state = stateEOF
				continue
			}
			// The one change of behaviour (dot-CR fix): keep the CR.
			r.r.UnreadByte()
			c = '\r'
			r.state = stateCR
		case stateCR:
			if c == '\n' {
				r.state = stateBeginLine
				break
			}
			r.state = stateData
		case stateData:
			if c == '\r' {
				r.state = stateCR
			}
		}
		b[n] = c
		n++
	}
	if err == nil && r.state == stateEOF {
		err = io.EOF
	}
	if r.limited {
		r.n -= int64(n)
	}
	return
}

// refLineLimitRead is v0.25.1's lineLimitReader.Read, unchanged.
func refLineLimitRead(r *lineLimitReader, b []byte) (int, error) {
	if r.curLineLength > r.LineLimit && r.LineLimit > 0 {
		return 0, ErrTooLongLine
	}
	n, err := r.R.Read(b)
	if err != nil {
		return n, err
	}
	if r.LineLimit == 0 {
		return n, nil
	}
	for _, chr := range b[:n] {
		if chr == '\n' {
			r.curLineLength = 0
		}
		r.curLineLength++
		if r.curLineLength > r.LineLimit {
			return 0, ErrTooLongLine
		}
	}
	return n, nil
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(b []byte) (int, error) { return f(b) }

// drain reads r to the end with reads of the given sizes in turn, and
// returns every (bytes, error) step.
func drain(r io.Reader, sizes []int) []string {
	var steps []string
	for i := 0; i < 10000; i++ {
		sz := sizes[i%len(sizes)]
		b := make([]byte, sz)
		n, err := r.Read(b)
		e := "<nil>"
		if err != nil {
			e = err.Error()
		}
		steps = append(steps, string(b[:n])+"|"+e)
		if err != nil {
			break
		}
	}
	return steps
}

// source delivers input through a bufio.Reader of bufSize, optionally one
// byte per underlying read, as the connection would.
func source(input []byte, bufSize int, oneByte bool) *bufio.Reader {
	var r io.Reader = bytes.NewReader(input)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	return bufio.NewReaderSize(r, bufSize)
}

func checkSame(t *testing.T, input []byte, limit int64, bufSize int, oneByte bool, sizes []int) {
	t.Helper()
	fast := &dataReader{r: source(input, bufSize, oneByte), limited: limit > 0, n: limit}
	ref := &dataReader{r: source(input, bufSize, oneByte), limited: limit > 0, n: limit}
	got := drain(fast, sizes)
	want := drain(readFunc(func(b []byte) (int, error) { return refDataRead(ref, b) }), sizes)
	if len(got) != len(want) {
		t.Fatalf("input %q: %d reads, want %d\ngot  %q\nwant %q", input, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("input %q, read %d: got %q, want %q", input, i, got[i], want[i])
		}
	}
	// And what is left on the connection is the same.
	restF, _ := io.ReadAll(fast.r)
	restR, _ := io.ReadAll(ref.r)
	if !bytes.Equal(restF, restR) {
		t.Fatalf("input %q: left %q, want %q", input, restF, restR)
	}
}

var dataCases = []string{
	"",
	"hello\r\n.\r\n",
	"hello\r\n.\r\nMAIL FROM:<x>\r\n",
	"..dot stuffed\r\n.\r\n",
	".\r\n",
	"a\rb\r\n.\r\n",
	"a\nb\r\n.\r\n",
	"bare lf.\n.\r\n",
	"x\r\r\n.\r\n",
	"x\r\n.x\r\n.\r\n",
	"x\r\n.\rx\r\n.\r\n",
	"body\r\n.\rMAIL FROM:<x>\r\n.\r\n",
	".\rx\r\n.\r\n",
	"x\r\n.\r\r\n.\r\n",
	"x\r\n.\r.\r\n",
	"x\r\n.\r",
	"x\r\n.\n.\r\n",
	"no end",
	"line one\r\nline two\r\n",
	"\r\n\r\n.\r\n",
	"long " + string(bytes.Repeat([]byte("abcdefgh"), 600)) + "\r\n.\r\n",
}

// TestDotCRKeepsCR: a line starting ".\r" without "\n" loses its stuffed dot
// (RFC 5321 §4.5.2) but keeps its CR, so that the application sees the bare
// CR; v0.25.1 dropped both and gave "body\r\nMAIL FROM:..." unseen.
func TestDotCRKeepsCR(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"body\r\n.\rMAIL FROM:<x>\r\n.\r\n", "body\r\n\rMAIL FROM:<x>\r\n"},
		{".\rx\r\n.\r\n", "\rx\r\n"},
		{"x\r\n.\r\r\n.\r\n", "x\r\n\r\r\n.\r\n"},
		{"x\r\n.\r\n", "x\r\n"},
		{"x\r\n..\r\n.\r\n", "x\r\n.\r\n"},
	} {
		for _, oneByte := range []bool{false, true} {
			r := &dataReader{r: source([]byte(tc.in), 16, oneByte)}
			got, err := io.ReadAll(r)
			if string(got) != tc.want || (err != nil && err != io.ErrUnexpectedEOF) {
				t.Errorf("%q (one byte %v): %q, %v; want %q", tc.in, oneByte, got, err, tc.want)
			}
		}
	}
}

func TestDataReaderPatchSame(t *testing.T) {
	for _, in := range dataCases {
		for _, limit := range []int64{0, 1, 5, 100, 1 << 20} {
			for _, buf := range []int{16, 64, 4096} {
				for _, oneByte := range []bool{false, true} {
					for _, sizes := range [][]int{{1}, {3, 7}, {4096}, {1, 100, 2}} {
						checkSame(t, []byte(in), limit, buf, oneByte, sizes)
					}
				}
			}
		}
	}
}

func FuzzDataReaderPatch(f *testing.F) {
	for _, in := range dataCases {
		f.Add([]byte(in), int64(0), uint8(16), false, uint8(5))
	}
	f.Fuzz(func(t *testing.T, input []byte, limit int64, buf uint8, oneByte bool, size uint8) {
		if limit < 0 {
			limit = -limit
		}
		checkSame(t, input, limit%(1<<16), int(buf)+16, oneByte, []int{int(size) + 1, 1, 4096})
	})
}

func checkLineLimitSame(t *testing.T, input []byte, limit int, sizes []int) {
	t.Helper()
	fast := &lineLimitReader{R: bytes.NewReader(input), LineLimit: limit}
	ref := &lineLimitReader{R: bytes.NewReader(input), LineLimit: limit}
	got := drain(fast, sizes)
	want := drain(readFunc(func(b []byte) (int, error) { return refLineLimitRead(ref, b) }), sizes)
	if len(got) != len(want) {
		t.Fatalf("input %q limit %d: %q, want %q", input, limit, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("input %q limit %d, read %d: got %q, want %q", input, limit, i, got[i], want[i])
		}
	}
	if fast.curLineLength != ref.curLineLength {
		t.Fatalf("input %q limit %d: line length %d, want %d", input, limit, fast.curLineLength, ref.curLineLength)
	}
}

func TestLineLimitPatchSame(t *testing.T) {
	for _, in := range append(dataCases, "abc", "abcd\nabcd\n", "\n\n\n", "abcde\n") {
		for _, limit := range []int{0, 1, 2, 4, 5, 6, 1000} {
			for _, sizes := range [][]int{{1}, {3, 7}, {4096}} {
				checkLineLimitSame(t, []byte(in), limit, sizes)
			}
		}
	}
}

func FuzzLineLimitPatch(f *testing.F) {
	f.Add([]byte("abcd\nabcd\n"), uint8(4), uint8(3))
	f.Fuzz(func(t *testing.T, input []byte, limit, size uint8) {
		checkLineLimitSame(t, input, int(limit), []int{int(size) + 1, 7})
	})
}

// benchMessage is about 200 KiB of mail as an attachment looks: 76-column
// base64 lines, then the end of data.
func benchMessage() []byte {
	line := bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo"), 3)[:76]
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nTo: b@example.net\r\nSubject: x\r\n\r\n")
	for b.Len() < 200<<10 {
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// BenchmarkDataReader reads a 200 KiB message as the server does (a
// 4096-byte bufio.Reader under the data reader, io.Copy's 32 KiB reads):
// "patched" is data.go, "v0.25.1" the byte loop (refDataRead).
func BenchmarkDataReader(b *testing.B) {
	msg := benchMessage()
	for _, tc := range []struct {
		name string
		read func(*dataReader, []byte) (int, error)
	}{
		{"patched", (*dataReader).Read},
		{"v0.25.1", refDataRead},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			buf := make([]byte, 32<<10)
			src := bytes.NewReader(msg)
			br := bufio.NewReaderSize(src, 4096)
			for i := 0; i < b.N; i++ {
				src.Reset(msg)
				br.Reset(src)
				r := &dataReader{r: br}
				for {
					if _, err := tc.read(r, buf); err != nil {
						break
					}
				}
			}
		})
	}
}

// BenchmarkLineLimit counts the line lengths of a 200 KiB message with the
// server's 2000-byte limit: "patched" is lengthlimit_reader.go, "v0.25.1"
// the byte loop (refLineLimitRead).
func BenchmarkLineLimit(b *testing.B) {
	msg := benchMessage()
	for _, tc := range []struct {
		name string
		read func(*lineLimitReader, []byte) (int, error)
	}{
		{"patched", (*lineLimitReader).Read},
		{"v0.25.1", refLineLimitRead},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			buf := make([]byte, 4096)
			src := bytes.NewReader(msg)
			for i := 0; i < b.N; i++ {
				src.Reset(msg)
				r := &lineLimitReader{R: src, LineLimit: 2000}
				for {
					if _, err := tc.read(r, buf); err != nil {
						break
					}
				}
			}
		})
	}
}
