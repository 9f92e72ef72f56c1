package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path with mode perm, replacing what is
// there: data goes to a temporary file in the same directory, which is
// synced and renamed over path, and then the directory is synced. A crash
// at any moment leaves either the old file or the whole new one, and once
// it returns nil the new file survives one. The temporary file is removed
// on failure.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeAtomic(path, data, perm, false)
}

// CreateFileAtomic is WriteFileAtomic for a file that must never be
// replaced: it fails with an error wrapping fs.ErrExist if path exists
// (any kind of file, a dangling symbolic link included), even when another
// process creates it at the same moment. The new file is linked into place
// (link(2) fails on an existing name, where rename would replace it), so a
// crash leaves no file or the whole one, never a short one.
func CreateFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeAtomic(path, data, perm, true)
}

func writeAtomic(path string, data []byte, perm fs.FileMode, exclusive bool) error {
	dir := filepath.Dir(path)
	if exclusive {
		// Not needed for correctness (Link decides), but it spares a
		// temporary file, and its fsync, in the common refusal.
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("write %s: %w", path, fs.ErrExist)
		}
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	// Removing the temporary name is right in every case: after Link, path
	// is the file's other name; after Rename, tmpName no longer exists.
	defer os.Remove(tmpName)
	// CreateTemp makes the file 0600; set perm explicitly (umask does not
	// apply to Chmod), before anything is written to it.
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if exclusive {
		if err := os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("write %s: %w", path, fs.ErrExist)
			}
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that names created, renamed or removed in
// it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
