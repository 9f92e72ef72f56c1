package relay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/relay"
)

// tempDirSpy is a queue that notes how many files the relay's temporary
// directory holds while each message is queued: one if the message went to
// a temporary file, none if it was held in memory.
type tempDirSpy struct {
	relay.Queue
	dir string

	mu    sync.Mutex
	files []int
}

func (s *tempDirSpy) Enqueue(ctx context.Context, env relay.Transaction, body io.Reader) (string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.files = append(s.files, len(ents))
	s.mu.Unlock()
	return s.Queue.Enqueue(ctx, env, body)
}

func (s *tempDirSpy) seen() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.files...)
}

// newBufferFixture is the fixture with a temporary directory of its own, watched
// by a tempDirSpy, holding memory bytes of a message in memory.
func newBufferFixture(t *testing.T, memory int, tune func(*relay.Options)) (*fixture, *tempDirSpy) {
	t.Helper()
	spy := &tempDirSpy{dir: t.TempDir()}
	f := newFixture(t, func(o *relay.Options) {
		o.TempDir, o.BufferMemoryBytes = spy.dir, memory
		spy.Queue, o.Queue = o.Queue, spy
		if tune != nil {
			tune(o)
		}
	})
	return f, spy
}

// emptyDir fails the test if the relay left a temporary file behind.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("temporary file left behind: %s", e.Name())
	}
}

// checkQueued checks that body is msg exactly, under the fields the relay
// adds: one Received and, for alice, the two signatures, which verify.
func checkQueued(f *fixture, body []byte, msg string) {
	f.t.Helper()
	if !bytes.HasSuffix(body, []byte(msg)) {
		f.t.Fatalf("queued message (%d bytes) does not end with the %d sent", len(body), len(msg))
	}
	prefix := string(body[:len(body)-len(msg)])
	var names []string
	for _, l := range strings.SplitAfter(prefix, "\r\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		names = append(names, l[:strings.IndexByte(l+":", ':')])
	}
	if strings.Join(names, ",") != "Received,DKIM-Signature,DKIM-Signature" {
		f.t.Errorf("fields added on top: %v", names)
	}
	if ds := f.verify(body); len(ds) != 2 {
		f.t.Errorf("signatures %v", ds)
	}
}

// A message up to BufferMemoryBytes is held in memory, a longer one (or one
// whose header alone is longer) goes to a temporary file; either way the
// queue gets the same bytes, and no file is left behind.
func TestBufferThreshold(t *testing.T) {
	const memory = 4096
	// Folded, as lines over MaxLineLength would close the connection.
	bigHeader := "X-Big: a" + strings.Repeat("\r\n "+strings.Repeat("y", 70), memory/70)
	for _, tc := range []struct {
		name   string
		memory int
		size   int
		extra  []string
		files  int // in the temporary directory while the message is queued
	}{
		{"under the limit", memory, memory - 1, nil, 0},
		{"at the limit", memory, memory, nil, 0},
		{"over the limit", memory, memory + 1, nil, 1},
		{"far over the limit", memory, 300 << 10, nil, 1},
		{"header over the limit", memory, 2 * memory, []string{bigHeader}, 1},
		{"default limit, 200 KiB", 0, 200 << 10, nil, 0},
		{"default limit, just over", 0, relay.DefaultBufferMemoryBytes + 1, nil, 1},
		{"files only", -1, 2 << 10, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, spy := newBufferFixture(t, tc.memory, nil)
			c := f.login("alice", pwAlice)
			msg := sizedMessage(tc.size, tc.extra...)
			if len(msg) != tc.size {
				t.Fatalf("message of %d bytes, want %d", len(msg), tc.size)
			}
			if code, m := c.send("app@tenant-a.example", []string{"bob@elsewhere.example"}, msg); code != 250 {
				t.Fatalf("DATA: %d %s", code, m)
			}
			checkQueued(f, f.only().Body, msg)
			if got := spy.seen(); len(got) != 1 || got[0] != tc.files {
				t.Errorf("files in the temporary directory while queueing: %v, want [%d]", got, tc.files)
			}
			emptyDir(t, spy.dir)
		})
	}
}

// A message that went to a temporary file and then fails leaves no file
// behind, whatever the failure: too large (RFC 1870, 552), a bare line end
// (550), or a queue that does not store it (451).
func TestBufferFileRemovedOnError(t *testing.T) {
	const memory = 4096
	// A first part well over the limit plus the 32 KiB the relay may read
	// ahead: once the client has sent it, the file must exist.
	first := sizedMessage(100 << 10)
	for _, tc := range []struct {
		name  string
		rest  string
		fail  error // of the queue
		code  int
		class string
	}{
		{"message too large", strings.Repeat(strings.Repeat("z", 78)+"\r\n", 2000), nil, 552, "5.3.4"},
		{"bare LF", "bare\nline\r\n", nil, 550, "5.6.0"},
		{"NUL", "nul\x00byte", nil, 550, "5.6.0"},
		{"queue failure", "end\r\n", errors.New("disk on fire"), 451, "4.3.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, spy := newBufferFixture(t, memory, func(o *relay.Options) { o.MaxMessageBytes = 200 << 10 })
			f.q.SetFail(tc.fail)
			c := f.login("alice", pwAlice)
			c.want("MAIL FROM:<app@tenant-a.example>", 250)
			c.want("RCPT TO:<bob@elsewhere.example>", 250)
			c.want("DATA", 354)
			c.write(first)
			waitFile(t, spy.dir)
			c.write(tc.rest + "\r\n.\r\n")
			if code, m := c.read(); code != tc.code || !strings.HasPrefix(m, tc.class) {
				t.Errorf("DATA: %d %s, want %d %s", code, m, tc.code, tc.class)
			}
			f.none()
			emptyDir(t, spy.dir)
			// The session goes on, and the next message is queued.
			msg := sizedMessage(2 << 10)
			f.q.SetFail(nil)
			if code, m := c.send("app@tenant-a.example", []string{"bob@elsewhere.example"}, msg); code != 250 {
				t.Fatalf("next message: %d %s", code, m)
			}
			checkQueued(f, f.only().Body, msg)
			emptyDir(t, spy.dir)
		})
	}
}

// waitFile waits until the relay has made its temporary file in dir. The
// wait only paces the test: it fails only if the file never comes.
func waitFile(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
			return
		}
	}
	t.Fatal("the relay made no temporary file for a message over its memory limit")
}
