package buffer

import (
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
)

// replace runs on the committer when a page of the open file went bad (a
// commit or a reader met it): the file is closed, moved aside like a file
// that fails its checks at Open, and a fresh one takes its place, numbering
// above every seq the old one assigned and starting with a buffer_recovered
// event. The process goes on: appends and the uplink continue on the new
// file, and the records of the old one are where the event says.
func (b *Buffer) replace(why error) error {
	old := b.dbh()
	b.mu.Lock()
	last := b.ctr.LastSeq
	b.mu.Unlock()
	b.log.WithFields(logrus.Fields{"reason": why.Error(), "last_seq": last}).Error("buffer file went bad while running; replacing it")
	// bbolt's Close waits for the readers' transactions to end; readers
	// that come after it get an error for that call and try again.
	_ = old.Close()
	b.closeSpace()
	rec, err := quarantine(b.path, why, b.opt.Logger)
	if err != nil {
		b.log.WithError(err).Error("buffer file could not be replaced")
		return err
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
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return nil
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
