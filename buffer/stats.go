package buffer

import (
	"errors"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// Stats is what a technician (tidegate buffer stats) and the metrics see.
type Stats struct {
	Path string `json:"path"`
	// Depth is the number of records held: not yet acknowledged or evicted.
	Depth         uint64    `json:"depth"`
	Readings      uint64    `json:"readings"`
	Billing       uint64    `json:"billing"`
	Summaries     uint64    `json:"summaries"`
	Events        uint64    `json:"events"`
	FirstSeq      uint64    `json:"first_seq"`                // oldest held; 0 when empty
	LastSeq       uint64    `json:"last_seq"`                 // last assigned
	SeqBase       uint64    `json:"seq_base"`                 // this file's seqs start above it (from the clock when it was created)
	Cursor        uint64    `json:"cursor"`                   // all records up to here are acknowledged or evicted
	Oldest        time.Time `json:"oldest,omitzero"`          // time of the oldest record held
	Newest        time.Time `json:"newest,omitzero"`          // time of the newest record held
	FileBytes     int64     `json:"file_bytes"`               // size of the bbolt file
	LiveBytes     uint64    `json:"live_bytes"`               // encoded bytes of the records held
	JournalBytes  uint64    `json:"journal_bytes"`            // bytes of the journal held beside them (journal.go); LiveBytes+JournalBytes is what MaxBytes bounds
	Appended      uint64    `json:"appended"`                 // records, over the file's life
	Acked         uint64    `json:"acked"`                    // records, over the file's life
	Evicted       uint64    `json:"evicted"`                  // records, over the file's life
	Evictions     uint64    `json:"evictions"`                // eviction rounds
	EvictedRanges []Range   `json:"evicted_ranges,omitempty"` // the most recent evicted ranges (the events have all)
	FullHits      uint64    `json:"full_hits"`                // commits that failed for lack of space
	MaxRecords    int64     `json:"max_records"`              // the bounds in force (as the daemon opened the file)
	MaxBytes      int64     `json:"max_bytes"`                //
	MaxSize       int64     `json:"max_size"`                 //
	Unclean       bool      `json:"unclean"`                  // the previous run did not Close: the consistency check ran
	Recovered     *Recovery `json:"recovered,omitempty"`      // non-nil when Open moved a damaged file aside
	FloorWrites   uint64    `json:"floor_writes"`             // writes of the seq floor file (seqfloor.go), each 13 bytes and an fsync
}

// Stats reads the counters (kept in memory) and the times of the oldest and
// newest records (two lookups). A page gone bad under those lookups leaves
// the times zero; it never panics.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	c := b.ctr
	s := Stats{
		Path: b.path, Depth: c.Count, Readings: c.ByKind[reading.KindReading], Billing: c.ByKind[reading.KindBilling],
		Summaries: c.ByKind[reading.KindSummary], Events: c.ByKind[reading.KindEvent],
		LastSeq: c.LastSeq, SeqBase: c.Base, Cursor: b.cursor, LiveBytes: c.Bytes, JournalBytes: c.Journal,
		Appended: c.Appended, Acked: c.Acked, Evicted: c.Evicted, Evictions: c.Evictions, FullHits: c.FullHits,
		EvictedRanges: append([]Range(nil), b.ranges...),
		MaxRecords:    b.opt.MaxRecords, MaxBytes: b.opt.MaxBytes, MaxSize: b.opt.MaxSize,
		Unclean: b.unclean, Recovered: b.recovered,
	}
	b.mu.Unlock()
	s.FloorWrites = b.floorWrites.Load()
	s.FileBytes = fileSize(b.path)
	if b.isClosed() {
		return s
	}
	db := b.dbh()
	if err := b.times(db, &s); err != nil {
		if errors.Is(err, ErrCorrupt) {
			b.reportBad(db, err)
		}
		s.Oldest, s.Newest = time.Time{}, time.Time{}
	}
	return s
}

func (b *Buffer) times(db *bolt.DB, s *Stats) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer b.guard(&err)
	return db.View(func(tx *bolt.Tx) error {
		cur := records(tx).Cursor()
		k, v := cur.First()
		if k != nil {
			s.FirstSeq = keySeq(k)
			s.Oldest = recordTime(decodeOrReport(s.FirstSeq, v))
		}
		k, v = cur.Last()
		if k != nil {
			s.Newest = recordTime(decodeOrReport(keySeq(k), v))
		}
		return nil
	})
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
