package buffer

import (
	"time"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
)

// replace runs on the committer when a page of the open file went bad (a
// commit or a reader met it): the file is closed and salvaged as at Open
// (salvage.go): its readable records are copied into a fresh file under
// their own seqs, the damaged file is moved aside, and the seqs that could
// not be kept are named in buffer_evicted events. The process goes on:
// appends carry on above the old file's last seq, and readers waiting on
// the swap (read.go) read on from where they were.
func (b *Buffer) replace(why error) (err error) {
	// Until a replacement succeeds, every commit tries again (commit.go):
	// a salvage that failed once (a full disk, a rename refused) must not
	// leave the buffer failed for good.
	b.broken = why
	defer func() {
		if err == nil {
			b.broken = nil
		}
		b.brokenAt = time.Now()
	}()
	old := b.dbh()
	b.mu.Lock()
	last := b.ctr.LastSeq
	b.mu.Unlock()
	b.log.WithFields(logrus.Fields{"reason": why.Error(), "last_seq": last}).
		Error("buffer file went bad while running; salvaging its readable records into a fresh file")
	// bbolt's Close waits for the readers' transactions to end; readers
	// that come after it get an error for that call and wait for the swap.
	_ = old.Close()
	b.closeSpace()
	rec, err := salvage(b.path, b.opt, why, b.opt.Logger)
	if err != nil {
		if rec, err = quarantine(b.path, why, err, b.opt.Logger); err != nil {
			b.log.WithError(err).Error("buffer file could not be replaced")
			return err
		}
	}
	db, unclean, err := openChecked(b.path, b.opt)
	if err != nil {
		b.log.WithError(err).Error("fresh buffer file could not be opened")
		return err
	}
	b.mu.Lock()
	b.ctr, b.cursor, b.ranges, b.unclean, b.recovered, b.minSeq = counters{}, 0, nil, unclean, rec, last
	b.mu.Unlock()
	b.sp = space{}
	b.dbp.Store(db)
	if err := b.init(); err != nil {
		b.log.WithError(err).Error("fresh buffer file could not be initialised")
		return err
	}
	b.openSpace()
	b.mu.Lock()
	close(b.swapped)
	b.swapped = make(chan struct{})
	b.mu.Unlock()
	b.log.WithFields(logrus.Fields{"salvaged": rec.Salvaged, "lost": rec.Lost, "moved_to": rec.MovedTo}).
		Warn("buffer file replaced while running; the uplink carries on with the salvaged records")
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return nil
}

// swapCh is closed when the file is next replaced.
func (b *Buffer) swapCh() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.swapped
}

// badPage is a corrupt page a reader met, in the file db was open on.
type badPage struct {
	db  *bolt.DB
	err error
}

// reportBad hands a corrupt page met by a reader to the committer, which
// replaces the file unless it has done so already since.
func (b *Buffer) reportBad(db *bolt.DB, err error) {
	select {
	case b.bad <- badPage{db, err}:
	default: // one is already waiting
	}
}

// dbh is the open bbolt file (replace swaps it).
func (b *Buffer) dbh() *bolt.DB { return b.dbp.Load() }
