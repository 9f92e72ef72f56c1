package queue

// Durability protocol.
//
// Enqueue writes the whole message file (header, envelope, body) into a
// spare file msg/<id> whose name an earlier fsync of msg/ made durable,
// changes its mode from 0200 to 0600 and fsyncs it; only then does it
// return the id. The mode is the commit mark: Open deletes every 0200 file
// (spare.go). Without a spare (they could not be made), and for EnqueueID,
// it writes tmp/<id>.msg, fsyncs it, renames it to msg/<id> and fsyncs msg/:
// there the rename is the commit point, and Open deletes temp files. A
// message with no state/<id> has every recipient pending.
//
// Recipient state is rewritten whole the same way (tmp/<id>.state-*, fsync,
// rename to state/<id>, fsync state/) after each delivery transaction, before
// the next one starts, so a recipient recorded as delivered is never sent to
// again. Concurrent callers share these directory fsyncs (dirsync.go).
//
// Remove deletes msg/<id> first and fsyncs msg/, then state/<id>; a state
// file without its message is an orphan that Open deletes. Complete, the
// removal of a message whose recipients are all final, skips that fsync:
// losing it to a power failure sends the message again, see Complete. When a
// transaction leaves every recipient delivered, the Deliverer removes the
// message without writing its state first: a crash before the removal is
// on disk sends the message again, as a crash before a state write would.

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// SpoolOptions configure a Spool. The zero value is usable.
type SpoolOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives quarantine and recovery events; nil discards.
	Log *slog.Logger
	// Metrics receives the counters; nil means a private set, readable
	// through Stats. Pass the same Metrics to the Deliverer.
	Metrics *Metrics
}

// Spool is a durable file-based Queue in one directory. It holds only a
// small index in memory; bodies stay on disk. Only one process may open a
// directory at a time: OpenSpool fails with ErrLocked otherwise.
type Spool struct {
	dir  string
	now  func() time.Time
	log  *slog.Logger
	m    *Metrics
	wake chan struct{}
	lock io.Closer

	// msgSync and stateSync fsync msg/ and state/, sharing each fsync
	// among concurrent callers (dirsync.go).
	msgSync, stateSync *dirSyncer

	spares spares // see spare.go

	mu      sync.Mutex
	idx     map[string]*entry // see index.go
	due     dueHeap           // see due.go
	senders senderCache       // see index.go
	leases  leases            // see lease.go

	// 64 KiB buffers for writing and reading message files, reused: under
	// load, allocating (and zeroing) them per message kept the garbage
	// collector busy.
	writers, readers sync.Pool
}

var _ DeliveryQueue = (*Spool)(nil)

// OpenSpool opens (creating if needed) the spool in dir, deletes what a
// crash left half-written, quarantines corrupt messages, and loads the rest.
func OpenSpool(dir string, opts SpoolOptions) (*Spool, error) {
	s := &Spool{
		dir:  dir,
		now:  opts.Now,
		log:  opts.Log,
		m:    opts.Metrics,
		wake: make(chan struct{}, 1),
		idx:  make(map[string]*entry),
	}
	s.leases.init()
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.m == nil {
		s.m = new(Metrics)
	}
	s.msgSync = newDirSyncer(func() error { return syncDir(filepath.Join(dir, "msg")) })
	s.stateSync = newDirSyncer(func() error { return syncDir(filepath.Join(dir, "state")) })
	for _, d := range []string{"", "tmp", "msg", "state", "quarantine"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStorage, err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		_ = lock.Close() // the error that matters is recover's
		return nil, err
	}
	return s, nil
}

// Close releases the spool directory. Stop the deliverers first.
func (s *Spool) Close() error {
	s.spares.bg.Wait()
	if err := s.lock.Close(); err != nil {
		return fmt.Errorf("%w: unlock: %v", ErrStorage, err)
	}
	return nil
}

func (s *Spool) path(sub, id string) string { return filepath.Join(s.dir, sub, id) }

// recover rebuilds the index from disk.
func (s *Spool) recover() error {
	tmps, err := os.ReadDir(filepath.Join(s.dir, "tmp"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	for _, t := range tmps {
		// Never acknowledged (a message) or never committed (a state).
		if err := os.RemoveAll(s.path("tmp", t.Name())); err != nil {
			return fmt.Errorf("%w: %v", ErrStorage, err)
		}
	}
	msgs, err := os.ReadDir(filepath.Join(s.dir, "msg"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	for _, d := range msgs {
		id := d.Name()
		if isSpare(d) {
			// A spare, or a message cut off while written: never
			// acknowledged (spare.go).
			if err := os.Remove(s.path("msg", id)); err != nil {
				return fmt.Errorf("%w: %v", ErrStorage, err)
			}
			continue
		}
		if !validID(id) || !d.Type().IsRegular() {
			s.quarantineFiles(id, corruptf("bad file name"))
			continue
		}
		m, err := s.load(id, true)
		if errors.Is(err, ErrCorrupt) {
			s.quarantineFiles(id, err)
			continue
		}
		if err != nil {
			return err
		}
		s.index(m)
	}
	states, err := os.ReadDir(filepath.Join(s.dir, "state"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	for _, d := range states {
		if _, ok := s.idx[d.Name()]; !ok {
			// Remove deleted the message but not yet its state.
			if err := os.RemoveAll(s.path("state", d.Name())); err != nil {
				return fmt.Errorf("%w: %v", ErrStorage, err)
			}
		}
	}
	s.log.Info("queue_spool_loaded", "dir", s.dir, "messages", len(s.idx))
	return nil
}

// load reads a message's envelope and state from disk.
// mayHaveState tells whether e's message may have a state file.
func (s *Spool) mayHaveState(e *entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !e.noState
}

func (s *Spool) load(id string, mayHaveState bool) (Message, error) {
	f, err := os.Open(s.path("msg", id))
	if errors.Is(err, fs.ErrNotExist) {
		return Message{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	defer f.Close()
	h, err := readMsgHead(bufio.NewReaderSize(f, 4096))
	if err != nil {
		return Message{}, err
	}
	if h.rec.ID != id {
		return Message{}, corruptf("envelope names message %q", h.rec.ID)
	}
	fi, err := f.Stat()
	if err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if fi.Size() != h.bodyOff+h.bodyLen {
		return Message{}, corruptf("file is %d bytes, header says %d", fi.Size(), h.bodyOff+h.bodyLen)
	}
	st := initialState(h.rec.To)
	var b []byte
	err = fs.ErrNotExist
	if mayHaveState {
		b, err = os.ReadFile(s.path("state", id))
	}
	switch {
	case err == nil:
		if st, err = decodeState(b, h.rec.To); err != nil {
			return Message{}, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return Message{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return Message{
		ID:         id,
		Envelope:   h.rec.Envelope,
		Queued:     h.rec.Queued,
		Size:       h.bodyLen,
		Recipients: st.Rcpts,
		DSNs:       st.DSNs,
	}, nil
}

// newID returns a time-ordered id with 64 random bits.
func newID(now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("%012x-%s", now.UnixMilli(), hex.EncodeToString(r[:]))
}

// Enqueue implements Queue. It writes into a spare file (spare.go) when it
// can get one, else through a temporary file and a rename.
func (s *Spool) Enqueue(ctx context.Context, env Envelope, body io.Reader) (string, error) {
	if err := checkEnvelope(env); err != nil {
		return "", err
	}
	how := inSpare
	id, err := s.spare()
	if err != nil {
		s.log.Debug("queue_enqueues_without_a_spare_file", "err", err)
		how, id = renamed, newID(s.now())
	}
	if err := s.store(ctx, id, env, body, how); err != nil {
		return "", err
	}
	return id, nil
}

// storeHow is how store puts a message file in place.
type storeHow int

const (
	renamed    storeHow = iota // tmp/<id>.msg, fsync, rename to msg/<id>, fsync msg/
	idempotent                 // the same, and a message already there is success
	inSpare                    // into the spare file msg/<id>, mode 0600, fsync
)

// EnqueueID implements DeliveryQueue.
func (s *Spool) EnqueueID(ctx context.Context, id string, env Envelope, body io.Reader) error {
	if !validID(id) {
		return fmt.Errorf("%w: bad id", ErrInvalid)
	}
	return s.store(ctx, id, env, body, idempotent)
}

func (s *Spool) store(ctx context.Context, id string, env Envelope, body io.Reader, how storeHow) error {
	if err := checkEnvelope(env); err != nil {
		return err
	}
	final := s.path("msg", id)
	path, flags, mode := final, os.O_WRONLY, modeComplete
	if how != inSpare {
		if _, err := os.Lstat(final); err == nil {
			if how == idempotent {
				return nil
			}
			return fmt.Errorf("%w: id %s already queued", ErrStorage, id)
		}
		path, flags, mode = s.path("tmp", id+".msg"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0 // created complete
	}
	rec := record{ID: id, Queued: s.now().UTC().Truncate(time.Millisecond), Envelope: env}
	rec.To = slices.Clone(env.To)
	envJSON, err := encodeRecord(rec)
	if err != nil {
		s.dropFile(path, id)
		return err
	}
	bw, _ := s.writers.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(nil, 64<<10)
	}
	size, err := writeMessage(ctx, path, flags, mode, envJSON, body, bw)
	bw.Reset(nil) // drop the file, and a write error with it
	s.writers.Put(bw)
	if err != nil {
		s.dropFile(path, id)
		return err
	}
	if how != inSpare {
		if err := os.Rename(path, final); err != nil {
			_ = os.Remove(path) // best effort; Open removes it anyway
			return fmt.Errorf("%w: %v", ErrStorage, err)
		}
		// Concurrent sessions share this fsync (dirsync.go).
		if err := s.msgSync.Sync(); err != nil {
			// The rename may not survive a crash: do not acknowledge.
			_ = os.Remove(final)
			return err
		}
	}
	m := Message{ID: id, Envelope: rec.Envelope, Queued: rec.Queued, Size: size, Recipients: initialState(rec.To).Rcpts}
	s.mu.Lock()
	s.index(m).noState = true
	s.mu.Unlock()
	s.m.Accepted.Add(1)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// dropFile removes a message file that was not acknowledged, best effort:
// whatever survives a crash, Open deletes (a temporary file, or a spare at
// mode 0200) or finds corrupt by its checksums.
func (s *Spool) dropFile(path, id string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("queue_unfinished_file_not_removed", "msg_id", id, "err", err)
	}
}

// writeMessage opens path with flags, writes the message file through w,
// sets its mode to mode (unless 0) once it is whole, and fsyncs it. It
// returns the body size.
func writeMessage(ctx context.Context, path string, flags int, mode os.FileMode, envJSON []byte, body io.Reader, w *bufio.Writer) (size int64, err error) {
	f, err := os.OpenFile(path, flags, modeComplete)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%w: close: %v", ErrStorage, cerr)
		}
	}()
	w.Reset(f)
	// A placeholder header of the right width, rewritten once the body's
	// length and checksum are known.
	if _, err := w.Write(msgHeader(len(envJSON), 0, 0, 0)); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if _, err := w.Write(envJSON); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if err := w.WriteByte('\n'); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	h := crc32.New(castagnoli)
	n, err := io.Copy(io.MultiWriter(w, h), ctxReader{ctx, body})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, err
		}
		return 0, fmt.Errorf("%w: body: %v", ErrStorage, err)
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	hdr := msgHeader(len(envJSON), n, crc32.Checksum(envJSON, castagnoli), h.Sum32())
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if mode != 0 {
		// The mark of a whole file (spare.go), after every byte of it.
		if err := f.Chmod(mode); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrStorage, err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("%w: fsync: %v", ErrStorage, err)
	}
	return n, nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := cmp.Or(serr, cerr); err != nil {
		return fmt.Errorf("%w: fsync %s: %v", ErrStorage, dir, err)
	}
	return nil
}

// writeState atomically replaces state/<id>. The caller holds e.fileMu.
func (s *Spool) writeState(id string, e *entry, st state) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	s.mu.Lock()
	e.noState = false // before the file exists, never after
	e.tmpCounter++
	tmp := s.path("tmp", fmt.Sprintf("%s.state-%d", id, e.tmpCounter))
	s.mu.Unlock()
	if err := writeFileSync(tmp, b); err != nil {
		_ = os.Remove(tmp) // best effort; Open removes it anyway
		return err
	}
	if err := os.Rename(tmp, s.path("state", id)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	// Deliverers finishing transactions at once share this fsync.
	return s.stateSync.Sync()
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := cmp.Or(werr, serr, cerr); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return nil
}

// lookup returns the index entry of id.
func (s *Spool) lookup(id string) (*entry, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.idx[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return e, nil
}

// List implements Queue.
func (s *Spool) List(ctx context.Context) ([]Summary, error) {
	s.mu.Lock()
	out := make([]Summary, 0, len(s.idx))
	for _, e := range s.idx {
		out = append(out, e.summary())
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Summary) int {
		return cmp.Or(a.Queued.Compare(b.Queued), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Get implements Queue.
func (s *Spool) Get(ctx context.Context, id string) (Message, error) {
	e, err := s.lookup(id)
	if err != nil {
		return Message{}, err
	}
	return s.load(id, s.mayHaveState(e))
}

// Retry implements Queue.
func (s *Spool) Retry(ctx context.Context, id string) error {
	e, token, err := s.lease(id)
	if err != nil {
		return err
	}
	defer s.unlease(id, token)
	e.fileMu.Lock()
	defer e.fileMu.Unlock()
	m, err := s.load(id, s.mayHaveState(e))
	if err != nil {
		return err
	}
	for i := range m.Recipients {
		if m.Recipients[i].Status == Deferred {
			m.Recipients[i].Next = time.Time{}
		}
	}
	if err := s.writeState(id, e, state{Rcpts: m.Recipients, DSNs: m.DSNs}); err != nil {
		return err
	}
	s.mu.Lock()
	e.setRcpts(m.Recipients)
	s.mu.Unlock()
	s.kick()
	return nil
}

func (s *Spool) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Remove implements Queue. It refuses, with ErrBusy, a message that is
// being delivered. The removal is durable before Remove returns: an
// administrator who removed a message must not see it come back, and
// delivered, after a crash.
func (s *Spool) Remove(ctx context.Context, id string) error {
	e, token, err := s.lease(id)
	if err != nil {
		return err
	}
	if err := s.remove(id, e, true); err != nil {
		s.unlease(id, token)
		return err
	}
	return nil
}

// remove deletes a leased message (the caller ends the lease if it fails): msg/<id> first, then state/<id>, so
// that a crash in between leaves an orphan state file, which Open deletes,
// rather than a message whose delivered recipients were forgotten. With
// durable, msg/ is fsynced in between, so the message cannot come back.
func (s *Spool) remove(id string, e *entry, durable bool) error {
	e.fileMu.Lock()
	defer e.fileMu.Unlock()
	if err := os.Remove(s.path("msg", id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if durable {
		if err := s.msgSync.Sync(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	delete(s.idx, id)
	delete(s.leases.byID, id)
	s.mu.Unlock()
	if !s.mayHaveState(e) {
		return nil
	}
	if err := os.Remove(s.path("state", id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// An orphan state file is harmless: Open deletes it.
		s.log.Warn("queue_state_file_not_removed", "msg_id", id, "err", err)
	}
	return nil
}

// Stats implements Queue.
func (s *Spool) Stats(ctx context.Context) (Stats, error) {
	st := Stats{
		Accepted:    s.m.Accepted.Load(),
		Delivered:   s.m.Delivered.Load(),
		Deferred:    s.m.Deferred.Load(),
		Bounced:     s.m.Bounced.Load(),
		DSNs:        s.m.DSNs.Load(),
		DSNsDropped: s.m.DSNsDropped.Load(),
		Quarantined: s.m.Quarantined.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Messages = len(s.idx)
	var oldest int64
	for _, e := range s.idx {
		st.Recipients += int(e.open)
		if oldest == 0 || e.queued < oldest {
			oldest = e.queued
		}
	}
	st.Oldest = fromNanos(oldest)
	return st, nil
}

// Body implements DeliveryQueue.
func (s *Spool) Body(ctx context.Context, id string) (io.ReadCloser, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	f, err := os.Open(s.path("msg", id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	br, _ := s.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nil, 64<<10)
	}
	br.Reset(f)
	h, err := readMsgHead(br)
	if err != nil {
		f.Close()
		br.Reset(nil)
		s.readers.Put(br)
		return nil, err
	}
	return &bodyReader{r: br, c: f, left: h.bodyLen, want: h.bodyCRC, h: crc32.New(castagnoli), pool: &s.readers}, nil
}

// bodyReader yields exactly the stored body and fails at its end, instead
// of returning io.EOF, if the bytes do not match the stored checksum.
type bodyReader struct {
	r    *bufio.Reader
	c    io.Closer
	left int64
	want uint32
	h    hash.Hash32
	pool *sync.Pool // where r goes back on Close
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, os.ErrClosed
	}
	if b.left == 0 {
		if b.h.Sum32() != b.want {
			return 0, corruptf("body checksum mismatch")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	b.h.Write(p[:n])
	if err == io.EOF && b.left > 0 {
		return n, corruptf("body truncated")
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (b *bodyReader) Close() error {
	if b.pool != nil {
		b.r.Reset(nil)
		b.pool.Put(b.r)
		b.pool, b.r = nil, nil
	}
	return b.c.Close()
}

// quarantineFiles moves a message's files to quarantine/ with a note of
// why. Failures are logged: the message is dropped from the index either
// way, so it is never delivered.
func (s *Spool) quarantineFiles(id string, reason error) {
	s.m.Quarantined.Add(1)
	s.log.Warn("queue_message_quarantined", "msg_id", id, "err", reason)
	qid := fmt.Sprintf("%s.%d", filepath.Base(id), s.now().UnixNano())
	for _, sub := range []string{"msg", "state"} {
		err := os.Rename(s.path(sub, id), s.path("quarantine", qid+"."+sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("queue_quarantine_move_failed", "msg_id", id, "err", err)
		}
	}
	if err := writeFileSync(s.path("quarantine", qid+".reason"), []byte(reason.Error()+"\n")); err != nil {
		s.log.Error("queue_quarantine_note_failed", "msg_id", id, "err", err)
	}
	qerr := syncDir(filepath.Join(s.dir, "quarantine"))
	for _, err := range []error{s.msgSync.Sync(), s.stateSync.Sync(), qerr} {
		if err != nil {
			s.log.Error("queue_quarantine_sync_failed", "msg_id", id, "err", err)
		}
	}
}

// Wait implements DeliveryQueue.
func (s *Spool) Wait() <-chan struct{} { return s.wake }

// Dir returns the spool directory.
func (s *Spool) Dir() string { return s.dir }
