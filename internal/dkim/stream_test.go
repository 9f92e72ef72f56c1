package dkim

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
)

// bodyReader generates a body of n bytes without holding it: lines of
// varying length with white-space runs, trailing white space, empty lines
// and a bare LF now and then, so both the fast and the byte-wise paths of
// the canonicalizer run.
type bodyReader struct {
	n, off int64
	line   []byte
	pos    int
	i      int
}

var bodyLines = [][]byte{
	[]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n"),
	[]byte("  indented\twith a tab and trailing space  \r\n"),
	[]byte("\r\n"),
	[]byte("bare LF line\n"),
	[]byte(strings.Repeat("long line ", 400) + "\r\n"),
	[]byte("caf\xc3\xa9 \xff\r\n"),
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n-r.off {
		p = p[:r.n-r.off]
	}
	n := 0
	for n < len(p) {
		if r.pos == len(r.line) {
			r.line, r.pos = bodyLines[r.i%len(bodyLines)], 0
			r.i++
		}
		c := copy(p[n:], r.line[r.pos:])
		r.pos += c
		n += c
	}
	r.off += int64(n)
	return n, nil
}

// TestStreamingMemory signs and verifies a 64 MiB body that is generated
// as it is read: what the Signer and Verifier allocate must not grow with
// the message. TotalAlloc counts every allocation, so it bounds the growth
// of the heap at its peak, not just what is left after a collection.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB body; skipped with -short")
	}
	const size = 64 << 20
	const bound = 8 << 20
	keys := loadFixedKeys(t)
	header := "From: a@example.com\r\nSubject: big\r\n\r\n"
	message := func() io.Reader { return io.MultiReader(strings.NewReader(header), &bodyReader{n: size}) }

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sigs, err := Sign(message(), &SignOptions{
		Keys: []SignKey{{Domain: "example.com", Selector: "ed", Signer: keys.ed}},
		Now:  clockAt(fixedNow),
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > bound {
		t.Errorf("signing a %d MiB body allocated %d KiB", size>>20, grew>>10)
	}

	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := Verify(context.Background(), io.MultiReader(strings.NewReader(sigs[0]), message()), &VerifyOptions{
		Resolver: mapResolver{RecordName("ed", "example.com"): {record(t, keys.ed.Public())}},
		Now:      clockAt(fixedNow),
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > bound {
		t.Errorf("verifying a %d MiB body allocated %d KiB", size>>20, grew>>10)
	}
	if len(res) != 1 || res[0].Status != StatusPass {
		t.Fatalf("verify: %+v", res)
	}
}
