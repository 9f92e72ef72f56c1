//go:build !unix

package queue

import (
	"errors"
	"fmt"
	"io"
)

// FreeSpace is not implemented on this system.
func (s *Spool) FreeSpace() (int64, error) {
	return 0, fmt.Errorf("%w: free space: %w", ErrStorage, errors.ErrUnsupported)
}

// lockDir does not lock on this system: run one process per spool.
func lockDir(dir string) (io.Closer, error) { return io.NopCloser(nil), nil }
