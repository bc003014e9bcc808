package buffer

import (
	"errors"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
)

// reserveBytes is disk space kept allocated past bbolt's last page. Deleting
// records is itself a commit that needs new pages, and on a disk that is
// truly full a file without free pages could then never evict anything:
// with blocks already allocated at its end, the eviction commit has room.
// When the reserve cannot be restored (ENOSPC), the buffer evicts before the
// disk refuses a commit.
const reserveBytes = 2 * spaceStep

// space keeps the reserve. Only the committer uses it.
type space struct {
	f        *os.File // own descriptor on the buffer file, for fallocate
	disabled bool     // the filesystem cannot preallocate
	low      bool     // the reserve could not be restored: evict before the next commit
}

func (b *Buffer) openSpace() {
	f, err := os.OpenFile(b.path, os.O_RDWR, 0)
	if err != nil {
		b.sp.disabled = true
		return
	}
	b.sp.f = f
}

// keepReserve runs after each commit.
func (b *Buffer) keepReserve() {
	if b.sp.disabled || b.sp.f == nil {
		return
	}
	var hw int64
	if err := b.db.View(func(tx *bolt.Tx) error { hw = tx.Size(); return nil }); err != nil {
		return
	}
	want := hw + reserveBytes
	if b.opt.MaxSize > 0 {
		want = min(want, b.opt.MaxSize+2*spaceStep)
	}
	fi, err := b.sp.f.Stat()
	if err != nil {
		return
	}
	// Free pages inside the file are room too: after an eviction the file
	// need not grow for a while.
	st := b.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(b.db.Info().PageSize)
	if fi.Size()+free >= want {
		b.sp.low = false
		return
	}
	// Extend by a reserve's worth beyond the need, so that growing files
	// change their size (metadata to sync) once per megabytes, not per commit.
	target := want + reserveBytes
	if b.opt.MaxSize > 0 {
		target = min(target, b.opt.MaxSize+2*spaceStep)
	}
	if target <= fi.Size() {
		return
	}
	err = fallocate(b.sp.f, fi.Size(), target-fi.Size())
	switch {
	case err == nil:
		b.sp.low = false
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		if !b.sp.low {
			b.log.WithFields(logrus.Fields{"file_bytes": fi.Size(), "needed": want}).
				Error("disk nearly full: cannot keep the buffer's reserve; evicting records")
		}
		b.sp.low = true
	default:
		// EOPNOTSUPP and the like: this filesystem cannot preallocate.
		b.log.WithField("error", err.Error()).Warn("cannot preallocate buffer space; a completely full disk may stop appends")
		b.sp.disabled = true
	}
}

func (b *Buffer) closeSpace() {
	if b.sp.f != nil {
		b.sp.f.Close()
	}
}
