package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// Spare message files.
//
// Renaming a finished file into msg/ needs a fsync of msg/ before the
// message may be acknowledged; on a virtual disk that fsync cost about 8 %
// of relay throughput even when shared (docs/performance.md). Instead,
// Enqueue writes into a spare: an empty file already in msg/, created with
// mode 0200 by an earlier batch whose directory entries one msg/ fsync made
// durable. Enqueue writes the message into it, changes its mode to 0600
// (the mark of a complete file, as every renamed file has), and fsyncs the
// file alone: data, size and mode are then on disk, and so is the name.
//
// Recovery deletes every msg/ file still at mode 0200: a spare never used,
// or a message whose writing a crash cut off, never acknowledged. After a
// kill the page cache holds the writes in program order, so a 0600 file is
// complete; after a power failure the mode may reach the disk before the
// data, and the envelope and body CRC-32Cs (format.go) catch that: the file
// is quarantined, never delivered. (Postfix marks its queue files complete
// the same way, with the owner's execute bit.)

const (
	modeSpare    os.FileMode = 0o200 // in msg/: not a message (yet)
	modeComplete os.FileMode = 0o600
	spareBatch               = 32 // files made per msg/ fsync
	spareLow                 = 8  // refill in the background below this
)

// spares is the Spool's stock of spare files.
type spares struct {
	mu   sync.Mutex
	ids  []string
	fill sync.Mutex     // one batch at a time
	bg   sync.WaitGroup // background fills, waited for by Close
}

// spare takes a spare file's id, making a batch first when none is left.
func (s *Spool) spare() (string, error) {
	for {
		s.spares.mu.Lock()
		if n := len(s.spares.ids); n > 0 {
			id := s.spares.ids[n-1]
			s.spares.ids = s.spares.ids[:n-1]
			s.spares.mu.Unlock()
			if n-1 < spareLow && s.spares.fill.TryLock() {
				s.spares.bg.Go(func() {
					defer s.spares.fill.Unlock()
					if err := s.makeSpares(); err != nil {
						s.log.Warn("queue_spare_files_not_made", "err", err)
					}
				})
			}
			return id, nil
		}
		s.spares.mu.Unlock()
		s.spares.fill.Lock()
		s.spares.mu.Lock()
		empty := len(s.spares.ids) == 0
		s.spares.mu.Unlock()
		var err error
		if empty { // nobody filled it while we waited
			err = s.makeSpares()
		}
		s.spares.fill.Unlock()
		if err != nil {
			return "", err
		}
	}
}

// makeSpares creates a batch of spare files and makes their names durable
// with one fsync of msg/. Callers hold spares.fill.
func (s *Spool) makeSpares() error {
	ids := make([]string, 0, spareBatch)
	now := s.now()
	for range spareBatch {
		id := newID(now)
		f, err := os.OpenFile(s.path("msg", id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, modeSpare)
		if err != nil {
			s.dropSpares(ids)
			return fmt.Errorf("%w: spare file: %v", ErrStorage, err)
		}
		if err := f.Close(); err != nil {
			ids = append(ids, id)
			s.dropSpares(ids)
			return fmt.Errorf("%w: spare file: %v", ErrStorage, err)
		}
		ids = append(ids, id)
	}
	if err := s.msgSync.Sync(); err != nil {
		s.dropSpares(ids)
		return err
	}
	s.spares.mu.Lock()
	s.spares.ids = append(s.spares.ids, ids...)
	s.spares.mu.Unlock()
	return nil
}

// dropSpares removes spare files, best effort: Open deletes what is left.
func (s *Spool) dropSpares(ids []string) {
	for _, id := range ids {
		if err := os.Remove(s.path("msg", id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("queue_spare_file_not_removed", "msg_id", id, "err", err)
		}
	}
}

// isSpare tells a msg/ file that recovery must delete: a spare, used or not.
func isSpare(d fs.DirEntry) bool {
	fi, err := d.Info()
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == modeSpare
}
