// Package relaytest holds test doubles for the relay package: a Queue that
// keeps each message in a directory, synced to disk like the real spool,
// and remembers what it stored.
//
// It must not import anything of dkimd but relay (and what relay's types
// need).
package relaytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/dkimd/dkimd/internal/relay"
)

// Message is one stored message.
type Message struct {
	ID          string
	Transaction relay.Transaction
	// Body is the message as stored, signatures included.
	Body []byte
}

// Queue is a relay.Queue on a directory. The zero value is not usable; use
// NewQueue.
type Queue struct {
	dir string

	mu   sync.Mutex
	msgs []Message
	// Fail, when set, is returned by Enqueue after reading the body, and
	// nothing is stored.
	fail error
	// free is what FreeSpace reports; -1 (unknown) until SetFreeSpace.
	free int64
}

// NewQueue returns a Queue storing into dir (tests pass t.TempDir()).
func NewQueue(dir string) *Queue { return &Queue{dir: dir, free: -1} }

// SetFreeSpace makes FreeSpace report n bytes.
func (q *Queue) SetFreeSpace(n int64) {
	q.mu.Lock()
	q.free = n
	q.mu.Unlock()
}

// FreeSpace reports what SetFreeSpace set, -1 (unknown) before.
func (q *Queue) FreeSpace() (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.free, nil
}

// SetFail makes every Enqueue fail with err (nil: succeed again).
func (q *Queue) SetFail(err error) {
	q.mu.Lock()
	q.fail = err
	q.mu.Unlock()
}

// Enqueue writes the body and the envelope (JSON) under a fresh id, syncs
// both files and the directory, and only then returns the id.
func (q *Queue) Enqueue(ctx context.Context, env relay.Transaction, body io.Reader) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	q.mu.Lock()
	fail := q.fail
	q.mu.Unlock()
	if fail != nil {
		return "", fail
	}
	if len(env.To) == 0 {
		return "", errors.Join(relay.ErrRefused, errors.New("relaytest: no recipients"))
	}
	idb := make([]byte, 8)
	rand.Read(idb)
	id := hex.EncodeToString(idb)
	meta, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{id + ".eml": b, id + ".json": meta} {
		if err := writeSync(filepath.Join(q.dir, name), data); err != nil {
			return "", err
		}
	}
	if d, err := os.Open(q.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return "", err
		}
	}
	q.mu.Lock()
	q.msgs = append(q.msgs, Message{ID: id, Transaction: env, Body: b})
	q.mu.Unlock()
	return id, nil
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Messages gives what was stored, oldest first.
func (q *Queue) Messages() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Message(nil), q.msgs...)
}
