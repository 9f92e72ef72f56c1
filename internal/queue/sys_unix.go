//go:build unix

package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FreeSpace returns the bytes available to this process on the spool's file
// system. The SMTP side answers 452 4.3.1 when it is below 1.5 times the
// message size limit (RFC 5321 §4.5.3.1.10 leaves the margin to us).
func (s *Spool) FreeSpace() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return 0, fmt.Errorf("%w: statfs: %v", ErrStorage, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // field types differ by OS
}

// lockDir takes an exclusive lock on dir/lock so that a second process
// cannot open the same spool (it would deliver every message twice). The
// kernel drops the lock when the process dies, kill -9 included.
func lockDir(dir string) (io.Closer, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close() // read-only use; nothing to lose
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("%w: lock: %v", ErrStorage, err)
	}
	return f, nil
}
