// Package buffer is tidegate's durable store-and-forward queue: every record
// between the drivers and the uplink, in one bbolt file on the gateway's own
// flash. See README.md for the guarantees and the file layout.
package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// Buffer is an open buffer file. All methods are safe for concurrent use.
type Buffer struct {
	path string
	opt  Options
	log  logrus.FieldLogger
	db   *bolt.DB

	// Every write goes through one committer goroutine (commit.go), which
	// folds whatever is queued into one transaction and one fsync.
	ops     chan *op
	quit    chan struct{}
	stopped chan struct{}
	closeMu sync.RWMutex // held for reading while queueing, so Close can stop the queue
	closed  bool

	notify  chan struct{}
	commits atomic.Uint64 // successful transactions of the committer, for benchmarks
	sp      space         // disk reserve, used by the committer only

	mu        sync.Mutex // guards the fields below, the committed state
	ctr       counters
	cursor    uint64
	ranges    []Range
	unclean   bool
	recovered *Recovery
}

// Open opens or creates the buffer at path. A file locked by another
// process gives ErrLocked after opt.Timeout. A corrupt file is moved aside
// and a fresh buffer is returned; Stats().Recovered says so.
func Open(path string, opt Options) (*Buffer, error) {
	opt = opt.withDefaults()
	db, unclean, err := openChecked(path, opt)
	var rec *Recovery
	if errors.Is(err, ErrCorrupt) && !opt.NoRecover {
		rec, err = quarantine(path, err, opt.Logger)
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
		db:        db,
		ops:       make(chan *op, 4096),
		quit:      make(chan struct{}),
		stopped:   make(chan struct{}),
		notify:    make(chan struct{}, 1),
		unclean:   unclean,
		recovered: rec,
	}
	if err := b.init(); err != nil {
		db.Close()
		return nil, err
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
		for _, name := range [][]byte{bucketRecords, bucketUrgent, bucketMeta, bucketState} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyFormat) == nil {
			if err := meta.Put(keyFormat, []byte{fileFormat}); err != nil {
				return err
			}
		}
		var c counters
		if v := meta.Get(keyCounters); v != nil {
			if err := c.decode(v); err != nil {
				return err
			}
		}
		b.ranges = decodeRanges(meta.Get(keyRanges))
		if b.recovered != nil {
			// The receiver deduplicates on (gateway, seq): a fresh file must
			// not reuse the lost file's numbers. Microseconds since 1970 are
			// beyond any sequence a file could have reached unless it took
			// more than a million records a second for its whole life.
			c.LastSeq = uint64(b.recovered.At.UnixMicro())
			ev := reading.Event{Time: b.recovered.At, Type: "buffer_recovered",
				Message: "buffer file was corrupt; moved aside and started afresh",
				Attrs: map[string]string{"moved_to": b.recovered.MovedTo, "reason": b.recovered.Reason,
					"first_seq": fmt.Sprint(c.LastSeq + 1)}}
			if err := appendEventTx(tx, &c, &ev); err != nil {
				return err
			}
		}
		if err := meta.Put(keyCounters, c.encode()); err != nil {
			return err
		}
		b.ctr = c
		b.cursor = cursorTx(tx, &c)
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
	if cerr := b.db.Close(); err == nil {
		err = cerr
	}
	b.closeSpace()
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
	err := b.db.View(func(tx *bolt.Tx) error {
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
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketState).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, State{Key: string(k), Value: append([]byte{}, v...)})
		}
		return nil
	})
	return out, err
}
