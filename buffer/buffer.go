// Package buffer is tidegate's durable store-and-forward queue: every record
// between the drivers and the uplink, in one bbolt file on the gateway's own
// flash. See README.md for the guarantees and the file layout.
package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// Buffer is an open buffer file. All methods are safe for concurrent use.
type Buffer struct {
	path string
	opt  Options
	log  logrus.FieldLogger
	dbp  atomic.Pointer[bolt.DB] // swapped when a file that went bad is replaced (replace.go)

	// Every write goes through one committer goroutine (commit.go), which
	// folds whatever is queued into one transaction and one fsync.
	ops     chan *op
	quit    chan struct{}
	stopped chan struct{}
	closeMu sync.RWMutex // held for reading while queueing, so Close can stop the queue
	closed  bool

	bad     chan badPage // a reader met a corrupt page: the committer replaces the file
	notify  chan struct{}
	commits atomic.Uint64 // successful transactions of the committer, for benchmarks
	sp      space         // disk reserve, used by the committer only

	mu        sync.Mutex // guards the fields below, the committed state
	ctr       counters
	cursor    uint64
	ranges    []Range
	unclean   bool
	recovered *Recovery
	emptied   *Recovery // the file was there but empty
	minSeq    uint64    // a replaced file's last seq: the new one numbers above it
	jkeys     [][]byte  // the journal's keys in the records bucket, oldest first (journal.go)
	jnext     uint64    // counter of the next journal key
	hotFrom   uint64    // seqs from here on are in "records", older ones may be in the backlog (backlog.go)

	broken        error         // the committer's: a replacement of a bad file failed; retried by a commit brokenRetry later
	brokenAt      time.Time     // when it was last tried
	floor         uint64        // what the seq floor file says (seqfloor.go); the committer's
	floorWrites   atomic.Uint64 // writes of the floor file
	swapped       chan struct{} // closed when the file has been replaced (replace.go); then a new one
	removeOnClose bool          // a temporary copy (Salvaged)
}

// Open opens or creates the buffer at path. A file locked by another
// process gives ErrLocked after opt.Timeout. A corrupt file is moved aside
// and a fresh buffer is returned; Stats().Recovered says so.
func Open(path string, opt Options) (*Buffer, error) {
	opt = opt.forOpen()
	// A file that exists but is empty lost its records (a full disk at
	// creation, a broken card): numbered afresh like a quarantined file.
	var emptied *Recovery
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		emptied = &Recovery{Reason: "file was empty", At: time.Now().UTC()}
	}
	db, unclean, err := openChecked(path, opt)
	rec := opt.salvagedCopy
	if errors.Is(err, ErrCorrupt) && !opt.NoRecover {
		why := err
		rec, err = salvage(path, opt, why, opt.Logger)
		if err != nil {
			rec, err = quarantine(path, why, err, opt.Logger)
		}
		if err == nil {
			db, unclean, err = openChecked(path, opt)
		}
	}
	if err != nil {
		return nil, err
	}
	b := &Buffer{
		path:      path,
		opt:       opt,
		log:       opt.Logger.WithField("buffer", path),
		bad:       make(chan badPage, 1),
		ops:       make(chan *op, 4096),
		quit:      make(chan struct{}),
		stopped:   make(chan struct{}),
		notify:    make(chan struct{}, 1),
		swapped:   make(chan struct{}),
		unclean:   unclean,
		recovered: rec,
		emptied:   emptied,
	}
	b.dbp.Store(db)
	b.removeOnClose = opt.salvagedCopy != nil
	b.floor = readFloor(path)
	if err := b.init(); err != nil {
		db.Close()
		return nil, err
	}
	if err := b.ensureFloor(b.ctr.LastSeq + floorSlack); err != nil {
		b.log.WithError(err).Error("buffer: the seq floor file could not be written; commits will try again")
	}
	if unclean {
		b.log.WithFields(logrus.Fields{"last_seq": b.ctr.LastSeq, "held": b.ctr.Count}).
			Warn("buffer was not closed cleanly; consistency check passed")
	}
	b.openSpace()
	go b.run()
	return b, nil
}

// init creates the buckets, loads the counters and marks the file as in use,
// so that a crash from here on is seen at the next Open.
func (b *Buffer) init() error {
	return b.update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyFormat); len(v) != 1 || v[0] < fileFormat {
			if err := meta.Put(keyFormat, []byte{fileFormat}); err != nil {
				return err
			}
		}
		var c counters
		fresh := true
		if v := meta.Get(keyCounters); v != nil {
			if err := c.decode(v); err != nil {
				return err
			}
			fresh = false
		}
		b.ranges = decodeRanges(meta.Get(keyRanges))
		if err := b.bounds(meta); err != nil {
			return err
		}
		bad, jkeys, gaps, err := recount(tx, &c, fresh)
		if err != nil {
			return err
		}
		rec := b.recovered
		if rec == nil && b.emptied != nil {
			rec, b.recovered = b.emptied, b.emptied
		}
		if fresh || (rec != nil && !rec.seqKnown) {
			// The receiver deduplicates on (gateway, seq): a fresh file
			// must not reuse the numbers of one that was lost, emptied,
			// replaced or moved aside. Microseconds since 1970 are beyond
			// any sequence a file could have reached unless it took more
			// than a million records a second for its whole life.
			c.LastSeq = max(c.LastSeq, uint64(max(0, b.opt.Clock().UnixMicro())), b.minSeq, b.floor, buildFloor())
			c.Base = c.LastSeq
		}
		// A salvaged file carries on from the damaged file's last seq; a
		// replaced one never numbers below what the old file handed out.
		c.LastSeq = max(c.LastSeq, b.minSeq)
		if rec != nil && b.opt.salvagedCopy == nil { // a copy for inspection shows the records as they are
			msg := "buffer file was corrupt; moved aside and started afresh"
			attrs := map[string]string{"reason": rec.Reason, "first_seq": fmt.Sprint(c.LastSeq + 1)}
			switch {
			case rec.MovedTo == "":
				msg = "buffer file was empty; started afresh"
			case rec.Salvaged > 0 || rec.Lost > 0:
				msg = fmt.Sprintf("buffer file was damaged; moved aside, its %d readable records kept under their seqs, %d lost (named in buffer_evicted events, reason salvage)", rec.Salvaged, rec.Lost)
				attrs["salvaged"], attrs["lost"] = fmt.Sprint(rec.Salvaged), fmt.Sprint(rec.Lost)
			}
			if rec.MovedTo != "" {
				attrs["moved_to"] = rec.MovedTo
			}
			ev := reading.Event{Time: rec.At, Type: "buffer_recovered", Message: msg, Attrs: attrs}
			if err := appendEventTx(tx, &c, &ev); err != nil {
				return err
			}
			if err := rangeEventsTx(tx, &c, rec.LostRanges, "salvage", "buffer file damaged: could not keep"); err != nil {
				return err
			}
		}
		for _, k := range bad {
			ev := reading.Event{Time: time.Now().UTC(), Type: "buffer_undecodable",
				Message: fmt.Sprintf("a record's key was damaged (%x); the record was removed", k),
				Attrs:   map[string]string{"key": fmt.Sprintf("%x", k), "reason": "corrupt key"}}
			if err := appendEventTx(tx, &c, &ev); err != nil {
				return err
			}
		}
		// The removed records' own seqs are somewhere in these gaps: named,
		// so that the receiver can tell their loss from a delay.
		if err := rangeEventsTx(tx, &c, gaps, "salvage", "records with damaged keys removed; their own seqs are among"); err != nil {
			return err
		}
		if len(bad) > 0 {
			b.log.WithFields(logrus.Fields{"removed": len(bad), "gaps": fmt.Sprint(gaps)}).Error("buffer: records with damaged keys removed")
		}
		if err := meta.Put(keyCounters, c.encode()); err != nil {
			return err
		}
		b.ctr = c
		b.jkeys, b.jnext = jkeys, 0
		if n := len(jkeys); n > 0 {
			b.jnext = binary.BigEndian.Uint64(jkeys[n-1][8:]) + 1
		}
		b.cursor = cursorTx(tx, &c)
		b.hotFrom = c.LastSeq + 1
		if k, _ := (recTree{hot: tx.Bucket(bucketRecords)}).Cursor().First(); k != nil {
			b.hotFrom = keySeq(k)
		}
		return meta.Put(keyClean, []byte{0})
	})
}

// Close stops the committer after it has committed everything queued,
// marks the file clean and closes it.
func (b *Buffer) Close() error {
	b.closeMu.Lock()
	if b.closed {
		b.closeMu.Unlock()
		return nil
	}
	b.closed = true
	b.closeMu.Unlock()
	close(b.quit)
	<-b.stopped
	err := b.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyClean, []byte{1})
	})
	if cerr := b.dbh().Close(); err == nil {
		err = cerr
	}
	b.closeSpace()
	if b.removeOnClose {
		os.Remove(b.path)
	}
	return err
}

// Notify receives after each commit that added records. It has room for
// one signal, so a slow consumer sees one wake-up for many commits.
func (b *Buffer) Notify() <-chan struct{} { return b.notify }

// Cursor is the highest sequence number such that every record up to it
// has been acknowledged (or evicted).
func (b *Buffer) Cursor() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cursor
}

// Path is the file the buffer lives in.
func (b *Buffer) Path() string { return b.path }

func (b *Buffer) isClosed() bool {
	b.closeMu.RLock()
	defer b.closeMu.RUnlock()
	return b.closed
}

// State returns the side-state value for key, or (nil, nil) when absent.
func (b *Buffer) State(key string) ([]byte, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	var out []byte
	err := b.dbh().View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketState).Get([]byte(key)); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	return out, err
}

// PutState stores a side-state value durably (it rides the next group
// commit). A nil v deletes the key.
func (b *Buffer) PutState(key string, v []byte) error {
	_, err := b.AppendWithState(context.Background(), []State{{Key: key, Value: v}})
	return err
}

// fileSize is the size of the file on disk; 0 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// States returns the side-state keys starting with prefix and their values,
// in key order.
func (b *Buffer) States(prefix string) ([]State, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	var out []State
	err := b.dbh().View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketState).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, State{Key: string(k), Value: append([]byte{}, v...)})
		}
		return nil
	})
	return out, err
}

// bounds records the bounds in force, so that an inspection tool shows the
// daemon's whatever it was told (tidegate buffer stats --path or --config);
// such a tool takes them from the file.
func (b *Buffer) bounds(meta *bolt.Bucket) error {
	if b.opt.inspect {
		if v := meta.Get(keyBounds); len(v) > 1 && v[0] == 1 {
			v = v[1:]
			for _, p := range []*int64{&b.opt.MaxRecords, &b.opt.MaxBytes, &b.opt.MaxSize} {
				x, n := binary.Varint(v)
				if n <= 0 {
					break
				}
				*p, v = x, v[n:]
			}
		}
		return nil
	}
	v := []byte{1}
	for _, x := range []int64{b.opt.MaxRecords, b.opt.MaxBytes, b.opt.MaxSize} {
		v = binary.AppendVarint(v, x)
	}
	return meta.Put(keyBounds, v)
}
