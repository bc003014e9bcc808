package buffer

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// File layout: these four buckets and the backlog (backlog.go). The
// journal lives among the records (keyspace.go).
var (
	bucketRecords = []byte("records") // seq (8 bytes big-endian) → encoded record
	bucketUrgent  = []byte("urgent")  // seq of every unacked event → empty, so ReadUrgent skips a backlog
	bucketMeta    = []byte("meta")    // the keys below
	bucketState   = []byte("state")   // side state of other stages
)

var (
	keyFormat   = []byte("format")   // layout version of the file: one byte
	keyCounters = []byte("counters") // counters, encoded below
	keyClean    = []byte("clean")    // 1 after Close, 0 while open: a 0 at Open means a crash
	keyRanges   = []byte("evicted")  // the most recent evicted ranges
	keyBounds   = []byte("bounds")   // MaxRecords, MaxBytes, MaxSize the daemon opened the file with
)

// fileFormat is the layout version written to meta/format. Records carry
// their own version byte (record.go). 2: the older records may be in the
// backlog bucket (backlog.go); a build that knows only 1 would not see
// them, so it refuses the file (ErrNewerFormat) instead. 3: records are
// stored as version 3 (a CRC that covers the seq), which a build of format
// 2 would report as undecodable. Files of format 1 and 2 are taken as they
// are and marked 3. The journal stays among the records in every format
// (keyspace.go says why); an empty "journal" bucket that builds of format 3
// created and never wrote is left alone.
const fileFormat = 3

// recentRanges is how many evicted ranges Stats reports; the buffer_evicted
// events carry all of them.
const recentRanges = 32

// counters live in meta/counters and are rewritten by every commit. They are
// kept rather than scanned because bbolt's KeyN walks the whole bucket and
// NextSequence cannot be trusted once records are deleted and the file is
// compacted.
type counters struct {
	LastSeq   uint64
	Appended  uint64
	Acked     uint64
	Evicted   uint64
	Count     uint64    // records held
	Bytes     uint64    // encoded bytes held
	ByKind    [5]uint64 // records held per reading.Kind (index 0 unused)
	ThinMark  uint64    // readings up to here have been thinned at ThinLevel
	ThinLevel uint64
	Evictions uint64 // eviction rounds
	FullHits  uint64 // commits that failed for lack of space
	// Base is LastSeq when the file was created: its seqs start above it.
	// Added after the first release: older files decode it as 0.
	Base uint64
	// Journal is the bytes of the journal's entries (journal.go): not
	// records, but space held, so MaxBytes bounds Bytes+Journal. Not
	// written: recount sums the entries at every Open.
	Journal uint64
}

// v1Fields is how many fields the first release wrote; later fields may be
// missing from an older file.
const v1Fields = 14

func (c *counters) fields() []*uint64 {
	return []*uint64{&c.LastSeq, &c.Appended, &c.Acked, &c.Evicted, &c.Count, &c.Bytes,
		&c.ByKind[1], &c.ByKind[2], &c.ByKind[3], &c.ByKind[4], &c.ThinMark, &c.ThinLevel, &c.Evictions, &c.FullHits, &c.Base}
}

// encode: version byte, then uvarints. A later version may append fields;
// an older reader ignores what it does not know.
func (c *counters) encode() []byte {
	b := []byte{1}
	for _, p := range c.fields() {
		b = binary.AppendUvarint(b, *p)
	}
	return b
}

func (c *counters) decode(b []byte) error {
	if len(b) < 1 || b[0] != 1 {
		return fmt.Errorf("%w: counters version", ErrCorrupt)
	}
	b = b[1:]
	for i, p := range c.fields() {
		if len(b) == 0 && i >= v1Fields {
			break
		}
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: counters truncated", ErrCorrupt)
		}
		*p = v
		b = b[n:]
	}
	return nil
}

func (c *counters) add(kind reading.Kind, size int) {
	c.Count++
	c.Bytes += uint64(size)
	if int(kind) < len(c.ByKind) {
		c.ByKind[kind]++
	}
}

// remove saturates at zero: counters that drifted from the records (a
// damaged file) must not wrap around to "full" and evict everything.
func (c *counters) remove(kind reading.Kind, size int) {
	c.Count = sub(c.Count, 1)
	c.Bytes = sub(c.Bytes, uint64(size))
	if int(kind) < len(c.ByKind) {
		c.ByKind[kind] = sub(c.ByKind[kind], 1)
	}
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// Range is an inclusive range of sequence numbers.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

func (r Range) String() string {
	if r.From == r.To {
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

func encodeRanges(rs []Range) []byte {
	b := []byte{1}
	for _, r := range rs {
		b = binary.AppendUvarint(b, r.From)
		b = binary.AppendUvarint(b, r.To)
	}
	return b
}

func decodeRanges(b []byte) []Range {
	if len(b) < 1 || b[0] != 1 {
		return nil
	}
	b = b[1:]
	var rs []Range
	for len(b) > 0 {
		f, n := binary.Uvarint(b)
		if n <= 0 {
			return rs
		}
		t, m := binary.Uvarint(b[n:])
		if m <= 0 {
			return rs
		}
		rs = append(rs, Range{f, t})
		b = b[n+m:]
	}
	return rs
}

func putSeq(k []byte, seq uint64) { binary.BigEndian.PutUint64(k, seq) }

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

func keySeq(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// recount checks the records' keys and counts what is held. A key that is
// not 8 bytes, out of order, or beyond the last seq assigned is a damaged
// byte in a key (such a key sorts to the end, where the next append would
// collide with it or the cursor would take it for the newest record): that
// record is removed and its key returned, so the cost is that one record.
// The counters are set to what the records say. gaps are where the
// removed records' own seqs must have been: between the good keys around
// each (a record acknowledged out of order may share such a gap).
func recount(tx *bolt.Tx, c *counters, fresh bool) (bad, journal [][]byte, gaps []Range, err error) {
	recs, urgent := records(tx), tx.Bucket(bucketUrgent)
	var n counters
	var prev uint64
	open := -1 // the first gap still waiting for the good key after it
	// Every key: the journal's too, and damaged keys of any length.
	cur := recs.keyCursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if journalEntry(k, v) {
			journal = append(journal, append([]byte(nil), k...))
			n.Journal += uint64(len(v))
			continue
		}
		s := keySeq(k)
		if len(k) != 8 || s <= prev || (!fresh && s > c.LastSeq) {
			bad = append(bad, append([]byte(nil), k...))
			if open < 0 {
				open = len(gaps)
				gaps = append(gaps, Range{prev + 1, 0})
			}
			continue
		}
		if open >= 0 {
			gaps[open].To = s - 1
			open = -1
		}
		prev = s
		n.add(recordKind(v), len(v))
	}
	for _, k := range bad {
		// Deleted through a cursor standing on it: a key out of order
		// cannot be found by the bucket's binary search.
		for ck, _ := cur.First(); ck != nil; ck, _ = cur.Next() {
			if bytes.Equal(ck, k) {
				if err := cur.Delete(); err != nil {
					return nil, nil, nil, err
				}
				break
			}
		}
	}
	// The event index must not name records that are gone.
	var stale [][]byte
	uc := urgent.Cursor()
	for k, _ := uc.First(); k != nil; k, _ = uc.Next() {
		if len(k) != 8 || recs.Get(k) == nil {
			stale = append(stale, append([]byte(nil), k...))
		}
	}
	for _, k := range stale {
		for ck, _ := uc.First(); ck != nil; ck, _ = uc.Next() {
			if bytes.Equal(ck, k) {
				if err := uc.Delete(); err != nil {
					return nil, nil, nil, err
				}
				break
			}
		}
	}
	if fresh {
		c.LastSeq = max(c.LastSeq, prev)
	}
	c.Count, c.Bytes, c.ByKind, c.Journal = n.Count, n.Bytes, n.ByKind, n.Journal
	if open >= 0 {
		gaps[open].To = c.LastSeq
	}
	var out []Range
	for _, g := range gaps {
		if g.From >= 1 && g.From <= g.To {
			out = append(out, g)
		}
	}
	return bad, journal, out, nil
}
