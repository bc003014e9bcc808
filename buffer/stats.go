package buffer

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// Stats is what a technician (tidegate buffer stats) and the metrics see.
type Stats struct {
	Path string
	// Depth is the number of records held: not yet acknowledged or evicted.
	Depth                                uint64
	Readings, Billing, Summaries, Events uint64
	FirstSeq                             uint64    // oldest held; 0 when empty
	LastSeq                              uint64    // last assigned
	Cursor                               uint64    // all records up to here are acknowledged or evicted
	Oldest, Newest                       time.Time // times of the oldest and newest records held
	FileBytes                            int64     // size of the bbolt file
	LiveBytes                            uint64    // encoded bytes of the records held
	Appended, Acked, Evicted             uint64    // records, over the file's life
	Evictions                            uint64    // eviction rounds
	EvictedRanges                        []Range   // the most recent evicted ranges (the events have all)
	FullHits                             uint64    // commits that failed for lack of space
	MaxRecords, MaxBytes, MaxSize        int64     // the bounds in force
	Unclean                              bool      // the previous run did not Close: the consistency check ran
	Recovered                            *Recovery // non-nil when Open moved a corrupt file aside
}

// Stats reads the counters (kept in memory) and the times of the oldest and
// newest records (two lookups).
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	c := b.ctr
	s := Stats{
		Path: b.path, Depth: c.Count, Readings: c.ByKind[reading.KindReading], Billing: c.ByKind[reading.KindBilling],
		Summaries: c.ByKind[reading.KindSummary], Events: c.ByKind[reading.KindEvent],
		LastSeq: c.LastSeq, Cursor: b.cursor, LiveBytes: c.Bytes,
		Appended: c.Appended, Acked: c.Acked, Evicted: c.Evicted, Evictions: c.Evictions, FullHits: c.FullHits,
		EvictedRanges: append([]Range(nil), b.ranges...),
		MaxRecords:    b.opt.MaxRecords, MaxBytes: b.opt.MaxBytes, MaxSize: b.opt.MaxSize,
		Unclean: b.unclean, Recovered: b.recovered,
	}
	b.mu.Unlock()
	s.FileBytes = fileSize(b.path)
	if b.isClosed() {
		return s
	}
	_ = b.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketRecords).Cursor()
		if k, v := cur.First(); k != nil {
			s.FirstSeq = keySeq(k)
			s.Oldest = recordTime(decodeOrReport(s.FirstSeq, v))
		}
		if k, v := cur.Last(); k != nil {
			s.Newest = recordTime(decodeOrReport(keySeq(k), v))
		}
		return nil
	})
	return s
}

// recordTime is when a record happened, as best it says.
func recordTime(r reading.Record) time.Time {
	switch {
	case r.Reading != nil:
		return r.Reading.Received
	case r.Event != nil:
		return r.Event.Time
	case r.Summary != nil:
		t, _ := time.Parse(time.DateOnly, r.Summary.Day)
		return t
	}
	return time.Time{}
}
