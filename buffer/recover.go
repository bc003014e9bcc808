package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// spaceStep is how far the file grows at a time under a MaxSize cap, and
// half the headroom the eviction that makes space may use beyond the cap.
const spaceStep = 1 << 20

// Recovery describes a corrupt file that Open moved aside.
type Recovery struct {
	MovedTo string    `json:"moved_to,omitempty"` // where the damaged file is now
	Reason  string    `json:"reason"`             // what the checks found
	At      time.Time `json:"at"`                 // when
	// Salvaged is how many records of the damaged file were readable and
	// kept (they keep their seqs); Lost how many were not, at least.
	Salvaged uint64 `json:"salvaged,omitempty"`
	Lost     uint64 `json:"lost,omitempty"`
	// LostRanges names every seq the salvage could not keep, as the
	// buffer_evicted events (reason "salvage") in the fresh file do: a
	// receiver that has some of them (delivered before the damage) loses
	// nothing there; the others are lost, not late.
	LostRanges []Range `json:"lost_ranges,omitempty"`
	// seqKnown: the damaged file's counters read, so its last seq is known
	// and new seqs carry on from it rather than from the clock.
	seqKnown bool
}

func boltOptions(opt Options) *bolt.Options {
	o := &bolt.Options{
		Timeout: opt.Timeout,
		// The freelist is rebuilt at open instead of being written at every
		// commit: after a drain it is large, and rewriting it each time
		// would multiply flash wear.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
	if opt.MaxSize > 0 {
		o.MaxSize = int(min(opt.MaxSize, math.MaxInt))
	}
	return o
}

// openChecked opens path with bbolt and checks that it is a buffer file in
// one piece. It reports whether the previous run ended without Close.
// Checks that fail return an error wrapping ErrCorrupt and leave the file
// closed.
func openChecked(path string, opt Options) (db *bolt.DB, unclean bool, err error) {
	// A truncated file makes bbolt touch mmap pages past its end: SIGBUS,
	// which this turns into a recoverable panic on this goroutine.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, unclean, err = nil, false, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	if fi, serr := os.Stat(path); serr == nil && fi.Size() > 0 {
		if err := walk(path, opt); err != nil {
			return nil, false, err
		}
	}
	db, err = bolt.Open(path, 0o600, boltOptions(opt))
	if err != nil {
		return nil, false, openError(path, opt, err)
	}
	if opt.MaxSize > 0 {
		// Grow in steps small against the cap, so the file can approach it
		// closely (bbolt otherwise doubles small files and adds 16 MiB to
		// large ones); evictForSpace relies on this step.
		db.AllocSize = spaceStep
	}
	fail := func(e error) (*bolt.DB, bool, error) {
		db.Close()
		return nil, false, e
	}
	size := fileSize(path)
	var format byte
	clean := true
	err = db.View(func(tx *bolt.Tx) error {
		if size < tx.Size() {
			return fmt.Errorf("%w: file is %d bytes, its pages need %d (truncated)", ErrCorrupt, size, tx.Size())
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if tx.Bucket(bucketRecords) != nil {
				return fmt.Errorf("%w: records without meta bucket", ErrCorrupt)
			}
			return nil // a new file
		}
		if v := meta.Get(keyFormat); len(v) == 1 {
			format = v[0]
		} else {
			return fmt.Errorf("%w: no format version", ErrCorrupt)
		}
		if v := meta.Get(keyClean); len(v) != 1 || v[0] != 1 {
			clean = false
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if format > fileFormat {
		return fail(fmt.Errorf("%w: %s has format %d, this build reads up to %d", ErrNewerFormat, path, format, fileFormat))
	}
	if !clean {
		// bbolt's own advice after a crash: power loss on flash can leave
		// pages that the meta page points to but that never reached the disk.
		// bbolt reads either meta page and uses the newer valid one; its
		// check also wants each meta page's 16-byte header intact. A damaged
		// header is rewritten from what it must hold (the page's id and the
		// meta flag) rather than the whole file moved aside for it.
		repairMetaHeaders(path, db.Info().PageSize)
		var problems []string
		err = db.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				if len(problems) < 5 {
					problems = append(problems, e.Error())
				}
			}
			return nil
		})
		if err == nil && len(problems) > 0 {
			err = fmt.Errorf("%w: consistency check: %s", ErrCorrupt, strings.Join(problems, "; "))
		}
		if err != nil {
			return fail(err)
		}
	}
	return db, !clean, nil
}

func openError(path string, opt Options, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s (waited %s; is the tidegate daemon running?)", ErrLocked, path, opt.Timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	// bbolt reports a file whose size does not fit its pages, or a page
	// size it cannot use, with errors it formats rather than wraps. Tell
	// those from a failure of this machine (no memory to map, a read
	// error) by the file itself: without a valid meta page it is corrupt.
	if fi, serr := os.Stat(path); serr == nil && fi.Size() > 0 && !hasValidMeta(path) {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return err
}

// hasValidMeta reports whether either of the file's two bbolt meta pages
// has the right magic, version and checksum (bbolt's own test of a meta
// page: it uses the second when the first fails it).
func hasValidMeta(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, off := range []int64{0, 4096, 8192, 16384, 32768, 65536, 1024, 2048} {
		var p [16 + 64]byte
		if _, err := f.ReadAt(p[:], off); err != nil {
			continue
		}
		m := p[16:]
		if binary.LittleEndian.Uint32(m[0:]) != 0xED0CDAED || binary.LittleEndian.Uint32(m[4:]) != 2 {
			continue
		}
		h := fnv.New64a()
		h.Write(m[:56])
		if h.Sum64() == binary.LittleEndian.Uint64(m[56:]) {
			return true
		}
	}
	return false
}

// walk reads every page of the file's tree, read-only, on this goroutine.
// bbolt rebuilds its free list at open (NoFreelistSync) by walking the same
// pages on a goroutine of its own, where a bad page is a panic nobody can
// recover: a damaged file would crash the daemon at every start. Walking
// first, where the caller recovers, turns that into ErrCorrupt.
func walk(path string, opt Options) error {
	ro, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: opt.Timeout})
	if err != nil {
		return openError(path, opt, err)
	}
	defer ro.Close()
	size := fileSize(path)
	return ro.View(func(tx *bolt.Tx) error {
		if size < tx.Size() {
			return fmt.Errorf("%w: file is %d bytes, its pages need %d (truncated)", ErrCorrupt, size, tx.Size())
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			c := b.Cursor()
			var prev []byte
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(v) > 0 {
					_ = v[len(v)-1] // touches the last page of an overflowing value
				}
				// bbolt checks key order when it rebuilds the free list,
				// and panics where the lock it took stays held: a damaged
				// key must be found here, before it opens the file.
				if prev != nil && bytes.Compare(k, prev) <= 0 {
					return fmt.Errorf("%w: bucket %s: key %x out of order after %x", ErrCorrupt, name, k, prev)
				}
				prev = k
			}
			return nil
		})
	})
}

// quarantine moves a corrupt file whose salvage failed (salvageErr) aside
// under a timestamped name and says so loudly: the records in it are not
// lost yet, but they will not be sent.
func quarantine(path string, why, salvageErr error, log logrus.FieldLogger) (*Recovery, error) {
	return moveAside(path, why, log, fmt.Sprintf("BUFFER FILE CORRUPT: its records could not be salvaged (%v); moved aside, "+
		"starting a fresh buffer; the records in the moved file will not be sent ('tidegate buffer export --path FILE' "+
		"shows what is readable in it)", salvageErr))
}

// moveAside renames path under a timestamped name and logs msg at error
// level with the fields a technician needs.
func moveAside(path string, why error, log logrus.FieldLogger, msg string) (*Recovery, error) {
	now := time.Now().UTC()
	dst := path + ".corrupt-" + now.Format("20060102T150405Z")
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.corrupt-%s-%d", path, now.Format("20060102T150405Z"), i)
	}
	if err := os.Rename(path, dst); err != nil {
		return nil, fmt.Errorf("moving corrupt buffer aside: %w (it failed its checks: %v)", err, why)
	}
	syncDir(filepath.Dir(path))
	log.WithFields(logrus.Fields{"path": path, "moved_to": dst, "reason": why.Error()}).Error(msg)
	return &Recovery{MovedTo: dst, Reason: why.Error(), At: now}, nil
}

// syncDir makes a rename durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// isFull recognises the ways a commit runs out of space, by value: the
// errno bbolt's write or fdatasync returned, or bbolt's own cap.
func isFull(err error) bool {
	return errors.Is(err, berrors.ErrMaxSizeReached) || isNoSpace(err)
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG)
}

// repairMetaHeaders rewrites the page header of meta page 0 or 1 when it is
// damaged and the page's meta body is valid, or the other meta page is:
// the header carries nothing but the page id, the meta flag and two zeros.
func repairMetaHeaders(path string, pageSize int) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	const metaFlag = 0x04
	var ok [2]bool
	var hdrs [2][16]byte
	for i := range 2 {
		var p [16 + 64]byte
		if _, err := f.ReadAt(p[:], int64(i*pageSize)); err != nil {
			return
		}
		copy(hdrs[i][:], p[:16])
		m := p[16:]
		h := fnv.New64a()
		h.Write(m[:56])
		ok[i] = binary.LittleEndian.Uint32(m[0:]) == 0xED0CDAED && h.Sum64() == binary.LittleEndian.Uint64(m[56:])
	}
	if !ok[0] && !ok[1] {
		return
	}
	for i := range 2 {
		h := hdrs[i]
		if binary.LittleEndian.Uint64(h[0:]) == uint64(i) && binary.LittleEndian.Uint16(h[8:]) == metaFlag &&
			binary.LittleEndian.Uint16(h[10:]) == 0 && binary.LittleEndian.Uint32(h[12:]) == 0 {
			continue
		}
		var fix [16]byte
		binary.LittleEndian.PutUint64(fix[0:], uint64(i))
		binary.LittleEndian.PutUint16(fix[8:], metaFlag)
		if _, err := f.WriteAt(fix[:], int64(i*pageSize)); err == nil {
			f.Sync()
		}
	}
}
