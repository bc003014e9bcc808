package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Compact rewrites the buffer file at path with only its live pages. bbolt
// reuses freed pages but never shrinks a file, so after a long outage has
// drained, the file stays as large as the outage made it; Compact gives the
// space back. It is offline: with the daemon running it returns ErrLocked.
// A corrupt file is refused (ErrCorrupt), not compacted.
func Compact(path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	opt := Options{NoRecover: true}.withDefaults()
	// openChecked runs the consistency check when the file was not closed
	// cleanly: compaction must not copy a damaged tree into a good-looking file.
	src, _, err := openChecked(path, opt)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	bo := boltOptions(opt)
	bo.MaxSize = 0
	dst, err := bolt.Open(tmp, fi.Mode().Perm(), bo)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compacting %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	// Renamed while src still holds the lock, so a daemon starting now
	// waits and then opens the compacted file.
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}
