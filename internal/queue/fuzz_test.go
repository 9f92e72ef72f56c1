package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func validMsgFile(t testing.TB) []byte {
	dir := t.TempDir()
	rec := record{ID: "0123-abc", Queued: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Envelope: Envelope{From: "a@x.test", To: []string{"b@y.test", "c@z.test"}, User: "u", Decision: "signed"}}
	j, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "m")
	if _, err := writeMessage(t.Context(), p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0, j, strings.NewReader("Subject: x\r\n\r\nbody\r\n"), bufio.NewWriter(nil)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzMsgHead: whatever msg/<id> holds, reading it does not panic, fails
// only with ErrCorrupt, and what it accepts survives a round trip.
func FuzzMsgHead(f *testing.F) {
	good := validMsgFile(f)
	f.Add(good)
	f.Add(good[:msgHeaderLen])
	f.Add([]byte("DKIMDQ1 00000002 0000000000000000 00000000 00000000\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readMsgHead(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		j, err := encodeRecord(h.rec)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.Write(msgHeader(len(j), h.bodyLen, crc(j), h.bodyCRC))
		buf.Write(j)
		buf.WriteByte('\n')
		h2, err := readMsgHead(&buf)
		if err != nil {
			t.Fatalf("re-encoded record rejected: %v", err)
		}
		if fmt.Sprint(h2.rec) != fmt.Sprint(h.rec) || h2.bodyLen != h.bodyLen {
			t.Fatalf("round trip changed %+v to %+v", h.rec, h2.rec)
		}
	})
}

// FuzzState: the same for state/<id>.
func FuzzState(f *testing.F) {
	st := initialState([]string{"a0@x.test", "a1@x.test"})
	st.Rcpts[0].Status, st.Rcpts[0].Attempts = Deferred, 2
	st.Rcpts[0].Next = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st.Rcpts[1].Status, st.Rcpts[1].Reply = Bounced, "550 5.1.1 no"
	good, err := encodeState(st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, uint8(2))
	f.Add(good[:stateHeaderLen], uint8(2))
	f.Add([]byte("DKIMDS1 00000002 00000000\n{}"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		to := make([]string, n%8)
		for i := range to {
			to[i] = fmt.Sprintf("a%d@x.test", i)
		}
		s, err := decodeState(data, to)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		b, err := encodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeState(b, to)
		if err != nil {
			t.Fatalf("re-encoded state rejected: %v", err)
		}
		b2, _ := encodeState(s2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed %s to %s", b, b2)
		}
	})
}

// Corrupt files found at startup are quarantined and never delivered.
func TestOpenQuarantinesCorrupt(t *testing.T) {
	e := newEnv(t)
	good := e.enqueue("alice@sender.test", []string{"a@rcpt.test"}, testBody("good"))
	badHead := e.enqueue("alice@sender.test", []string{"b@rcpt.test"}, testBody("badhead"))
	badState := e.enqueue("alice@sender.test", []string{"c@rcpt.test"}, testBody("badstate"))
	short := e.enqueue("alice@sender.test", []string{"d@rcpt.test"}, testBody("short"))
	b, _ := os.ReadFile(e.sp.path("msg", badHead))
	b[msgHeaderLen+3] ^= 1 // inside the envelope JSON: CRC mismatch
	must(t, os.WriteFile(e.sp.path("msg", badHead), b, 0o600))
	must(t, os.WriteFile(e.sp.path("state", badState), []byte("DKIMDS1 00000002 00000000\n{}"), 0o600))
	b, _ = os.ReadFile(e.sp.path("msg", short))
	must(t, os.WriteFile(e.sp.path("msg", short), b[:len(b)-3], 0o600)) // truncated body
	must(t, os.WriteFile(filepath.Join(e.dir, "msg", "bad name!"), []byte("x"), 0o600))

	e.open()
	l := e.list()
	if len(l) != 1 || l[0].ID != good {
		t.Fatalf("List = %+v, want only %s", l, good)
	}
	if st, _ := e.sp.Stats(e.ctx); st.Quarantined != 4 {
		t.Fatalf("Quarantined = %d, want 4", st.Quarantined)
	}
	q, _ := os.ReadDir(filepath.Join(e.dir, "quarantine"))
	if len(q) < 8 {
		t.Fatalf("quarantine holds %d files", len(q))
	}
	if got := e.deliverAll(); len(got) != 1 || got[0] != good {
		t.Fatalf("delivered %v, want only %s", got, good)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
