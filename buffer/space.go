package buffer

import (
	"os"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
)

// reserveBytes is disk space kept allocated past bbolt's last page. Deleting
// records is itself a commit that needs new pages, and on a disk that is
// truly full a file without free pages could then never evict anything:
// with blocks already allocated at its end, the eviction commit has room.
// An eviction commit touches a few dozen pages at most, so the reserve is
// small against a data partition of a few MiB. When it cannot be kept the
// buffer says so and goes on; it evicts only when a commit does not fit.
const reserveBytes = 256 << 10

// space keeps the reserve. Only the committer uses it.
type space struct {
	f        *os.File // own descriptor on the buffer file, for fallocate
	disabled bool     // the filesystem cannot preallocate
	short    bool     // the reserve could not be restored (reported once until it can again)
	have     int64    // blocks are allocated up to here
	moveHold uint64   // no move to the backlog before this seq: the last one did not fit (commit.go)
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
	if err := b.dbh().View(func(tx *bolt.Tx) error { hw = tx.Size(); return nil }); err != nil {
		return
	}
	want := hw + reserveBytes
	if b.opt.MaxSize > 0 {
		want = min(want, b.opt.MaxSize+2*spaceStep)
	}
	// Free pages inside the file are room too: after an eviction the file
	// need not grow for a while.
	st := b.dbh().Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(b.dbh().Info().PageSize)
	if free >= reserveBytes || want <= b.sp.have {
		b.sp.short = false
		return
	}
	// The blocks past the last page, not the file's size: bbolt grows the
	// file by truncating, which leaves a hole that a full disk cannot fill.
	// Allocated a reserve's worth beyond the need, so that growing files
	// change their size (metadata to sync) once per step, not per commit.
	target := want + reserveBytes
	if b.opt.MaxSize > 0 {
		target = min(target, b.opt.MaxSize+2*spaceStep)
	}
	err := fallocate(b.sp.f, hw, target-hw)
	if isNoSpace(err) {
		target = want // the reserve alone, without the step ahead
		err = fallocate(b.sp.f, hw, target-hw)
	}
	if err == nil {
		b.sp.have = target
	}
	switch {
	case err == nil:
		b.sp.short = false
	case isNoSpace(err):
		if !b.sp.short {
			b.log.WithFields(logrus.Fields{"used_bytes": hw, "needed": want}).
				Warn("disk nearly full: cannot keep the buffer's reserve; records are evicted when a commit does not fit")
		}
		b.sp.short = true
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
