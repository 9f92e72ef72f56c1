package queue

import (
	"errors"
	"runtime"
	"sync"
	"testing"
)

// fakeFsync stands in for a directory fsync. With gated, each call waits
// for the test to send its result on gate; otherwise it succeeds at once.
type fakeFsync struct {
	gated  bool
	gate   chan error
	starts chan int // the number of each call, as it starts (gated only)

	mu                sync.Mutex
	started, finished int
	inFlight, overlap bool
}

func newFakeFsync(gated bool) *fakeFsync {
	return &fakeFsync{gated: gated, gate: make(chan error), starts: make(chan int, 100)}
}

func (f *fakeFsync) fsync() error {
	f.mu.Lock()
	f.overlap = f.overlap || f.inFlight
	f.inFlight = true
	f.started++
	n := f.started
	f.mu.Unlock()
	var err error
	if f.gated {
		f.starts <- n
		err = <-f.gate
	} else {
		runtime.Gosched() // let other callers arrive while it runs
	}
	f.mu.Lock()
	f.inFlight = false
	f.finished++
	f.mu.Unlock()
	return err
}

func (f *fakeFsync) counts() (started, finished int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started, f.finished
}

// syncCall is what one Sync call saw.
type syncCall struct {
	err error
	// startedBefore is how many fsyncs had started when Sync was called,
	// finishedAfter how many had ended when it returned.
	startedBefore, finishedAfter int
}

func callSync(d *dirSyncer, f *fakeFsync) <-chan syncCall {
	ch := make(chan syncCall, 1)
	go func() {
		before, _ := f.counts()
		err := d.Sync()
		_, after := f.counts()
		ch <- syncCall{err: err, startedBefore: before, finishedAfter: after}
	}()
	return ch
}

// waitWaiting returns once n callers wait in d for the next fsync.
func waitWaiting(d *dirSyncer, n int) {
	for {
		d.mu.Lock()
		w := 0
		if d.next != nil {
			w = d.next.callers
		}
		d.mu.Unlock()
		if w == n {
			return
		}
		runtime.Gosched()
	}
}

// TestDirSyncerGroupCommit: callers that arrive while a fsync is in flight
// do not return when it ends (it may have started before their rename);
// they share the next fsync, and each gets the error of the fsync that
// covers it.
func TestDirSyncerGroupCommit(t *testing.T) {
	errDisk := errors.New("disk on fire")
	tests := []struct {
		name         string
		first, next  error // results of fsync 1 and 2
		wantA, wantB error
	}{
		{"both succeed", nil, nil, nil, nil},
		{"shared fsync fails every caller it covers", nil, errDisk, nil, errDisk},
		{"a failure before the callers' changes is not theirs", errDisk, nil, errDisk, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFsync(true)
			d := newDirSyncer(f.fsync)
			a := callSync(d, f)
			if n := <-f.starts; n != 1 {
				t.Fatalf("first fsync is number %d", n)
			}
			// B, C and D arrive while fsync 1 is in flight.
			var later []<-chan syncCall
			for range 3 {
				later = append(later, callSync(d, f))
			}
			waitWaiting(d, 3)
			f.gate <- tt.first
			if got := <-a; !errors.Is(got.err, tt.wantA) || (tt.wantA == nil) != (got.err == nil) || got.finishedAfter < 1 {
				t.Fatalf("A: %+v, want err %v after fsync 1", got, tt.wantA)
			}
			if n := <-f.starts; n != 2 {
				t.Fatalf("second fsync is number %d", n)
			}
			f.gate <- tt.next
			for i, ch := range later {
				got := <-ch
				if got.startedBefore != 1 || got.finishedAfter < 2 {
					t.Errorf("caller %d returned before a fsync that started after its call: %+v", i, got)
				}
				if !errors.Is(got.err, tt.wantB) || (tt.wantB == nil) != (got.err == nil) {
					t.Errorf("caller %d: err %v, want %v", i, got.err, tt.wantB)
				}
			}
			if started, _ := f.counts(); started != 2 || d.count() != 2 {
				t.Errorf("%d fsyncs (count %d) for 4 callers, want 2", started, d.count())
			}
			// A failure does not stick: a later caller gets a fsync of its own.
			e := callSync(d, f)
			if n := <-f.starts; n != 3 {
				t.Fatalf("third fsync is number %d", n)
			}
			f.gate <- nil
			if got := <-e; got.err != nil || got.finishedAfter != 3 {
				t.Errorf("E: %+v", got)
			}
		})
	}
}

// TestDirSyncerConcurrent: under any interleaving (run with -race), every
// call returns only after a fsync that started after the call, and fsyncs
// never overlap.
func TestDirSyncerConcurrent(t *testing.T) {
	f := newFakeFsync(false)
	d := newDirSyncer(f.fsync)
	const goroutines, calls = 16, 200
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				got := <-callSync(d, f)
				if got.err != nil || got.finishedAfter <= got.startedBefore {
					t.Errorf("Sync returned %+v: no fsync started after the call had ended", got)
					return
				}
			}
		})
	}
	wg.Wait()
	started, _ := f.counts()
	if f.overlap {
		t.Error("fsyncs overlapped")
	}
	t.Logf("%d fsyncs for %d calls", started, goroutines*calls)
}
