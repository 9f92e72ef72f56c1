package queue

import "sync"

// Group commit for directory fsyncs.
//
// A rename into msg/ (or state/) is durable only once the directory itself
// is fsynced, by a fsync that started after the rename: one already in
// flight may have missed it. When several sessions enqueue at once, one
// fsync that starts after all their renames covers them all. So a caller
// that finds a fsync in flight does not start another beside it: it waits
// for the next one, which starts as soon as the one in flight ends and
// covers every caller that arrived meanwhile. A caller alone pays one
// fsync, as before; under load, that is one fsync per batch instead of one
// per message, at the price of waiting for the rest of the fsync in flight.

// dirSyncer fsyncs one directory on behalf of concurrent callers, sharing
// each fsync among all the callers it covers.
type dirSyncer struct {
	fsync func() error // fsyncs the directory

	mu      sync.Mutex
	running bool       // a fsync is in flight
	next    *syncRound // the fsync to start when it ends, if callers wait for one
	started uint64     // how many fsyncs started
}

// syncRound is one fsync and the callers waiting for it.
type syncRound struct {
	done    chan struct{} // closed once the fsync has ended
	err     error         // its result, set before done is closed
	callers int           // guarded by dirSyncer.mu
}

func newDirSyncer(fsync func() error) *dirSyncer {
	return &dirSyncer{fsync: fsync}
}

// Sync returns once a fsync of the directory that started after Sync was
// called has ended, so it covers every change the caller made before the
// call, and returns that fsync's error.
func (d *dirSyncer) Sync() error {
	d.mu.Lock()
	if !d.running {
		d.running = true
		d.started++
		d.mu.Unlock()
		err := d.fsync()
		d.startNext()
		return err
	}
	r := d.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		d.next = r
	}
	r.callers++
	d.mu.Unlock()
	<-r.done
	return r.err
}

// startNext is called when the fsync in flight has ended: it starts the
// next one if callers wait for it. It runs in a goroutine of its own, so
// that the caller who did the fsync that just ended returns at once.
func (d *dirSyncer) startNext() {
	d.mu.Lock()
	r := d.next
	d.next = nil
	if r == nil {
		d.running = false
		d.mu.Unlock()
		return
	}
	d.started++
	d.mu.Unlock()
	go func() {
		r.err = d.fsync()
		close(r.done)
		d.startNext()
	}()
}

// count returns how many fsyncs were started.
func (d *dirSyncer) count() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}
