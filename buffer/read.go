package buffer

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"tidegate/reading"
)

// DefaultReadMax is what Read and ReadUrgent return at most when max <= 0.
const DefaultReadMax = 1000

// Read returns up to max records not yet acknowledged with Seq > after, in
// ascending order. After a restart the same records come again with the
// same sequence numbers until they are acknowledged (at least once).
func (b *Buffer) Read(after uint64, max int) ([]reading.Record, error) {
	return b.read(after, max, false)
}

// ReadUrgent is Read restricted to events, so the uplink can send them ahead
// of a backlog of readings. It does not scan the backlog: events are
// indexed.
func (b *Buffer) ReadUrgent(after uint64, max int) ([]reading.Record, error) {
	return b.read(after, max, true)
}

// swapWait bounds how long a read waits for a damaged file to be salvaged
// (replace.go) before it returns ErrCorrupt, which the caller retries.
const swapWait = time.Minute

func (b *Buffer) read(after uint64, max int, urgentOnly bool) ([]reading.Record, error) {
	for try := 0; ; try++ {
		swapped := b.swapCh()
		db := b.dbh()
		out, err := b.readOn(db, after, max, urgentOnly)
		if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrPanic) || try > 0 {
			return out, classify(err)
		}
		if b.dbh() != db {
			continue // the file was replaced under the call: once more on the new one
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			return out, classify(err)
		}
		// A bad page (or the file closed for its salvage): the committer
		// salvages it; the records keep their seqs, so the read goes on
		// from where it was on the fresh file.
		b.reportBad(db, err)
		t := time.NewTimer(swapWait)
		select {
		case <-swapped:
			t.Stop()
		case <-b.quit:
			t.Stop()
			return nil, ErrClosed
		case <-t.C:
			return nil, fmt.Errorf("%w: %w (salvage still running after %s)", ErrCorrupt, err, swapWait)
		}
	}
}

func (b *Buffer) readOn(db *bolt.DB, after uint64, max int, urgentOnly bool) (_ []reading.Record, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer b.guard(&err)
	if b.isClosed() {
		return nil, ErrClosed
	}
	if max <= 0 {
		max = DefaultReadMax
	}
	if after == ^uint64(0) {
		return nil, nil
	}
	var out []reading.Record
	err = db.View(func(tx *bolt.Tx) error {
		recs := records(tx)
		var cur interface {
			Seek([]byte) ([]byte, []byte)
			Next() ([]byte, []byte)
		}
		if urgentOnly {
			cur = tx.Bucket(bucketUrgent).Cursor()
		} else {
			cur = recs.Cursor()
		}
		for k, v := cur.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = cur.Next() {
			if urgentOnly {
				if v = recs.Get(k); v == nil {
					continue
				}
			}
			out = append(out, decodeOrReport(keySeq(k), v))
		}
		return nil
	})
	return out, err
}

// decodeOrReport turns a record that does not decode into an event saying
// so, under the same sequence number: the uplink sends and acknowledges it
// like any other, instead of the queue stalling on it forever.
func decodeOrReport(seq uint64, v []byte) reading.Record {
	r, err := decodeStored(seq, v)
	if err != nil {
		r = reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Type: "buffer_undecodable",
			Message: fmt.Sprintf("record %d could not be decoded: %v", seq, err),
			Attrs:   map[string]string{"seq": fmt.Sprint(seq), "error": err.Error(), "bytes": fmt.Sprintf("%x", v[:min(len(v), 64)])}}}
	}
	r.Seq = seq
	return r
}
