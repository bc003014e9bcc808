package buffer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// Eviction order, lowest priority first. Interval readings go first (and are
// thinned before any is dropped outright); daily summaries and billing
// reads, which the service bills from, are kept longer; events longest.
var evictOrder = [...]reading.Kind{reading.KindReading, reading.KindSummary, reading.KindBilling, reading.KindEvent}

// rangesPerEvent keeps one buffer_evicted event a reasonable size; a large
// eviction is reported in several events.
const rangesPerEvent = 200

type evictor struct {
	recs       recTree
	urgent     *bolt.Bucket
	c          *counters
	below      uint64 // records from here on were appended by this commit and are never evicted by it
	maxRecords uint64
	maxBytes   uint64
	ranges     []Range
	err        error
}

func (e *evictor) need() bool {
	return e.err == nil && (e.c.Count > e.maxRecords || e.c.Bytes > e.maxBytes)
}

// drop deletes the record under cur and returns the next one.
func (e *evictor) drop(cur *recCursor, k, v []byte) ([]byte, []byte) {
	var kk [8]byte
	copy(kk[:], k)
	seq, kind, size := keySeq(k), recordKind(v), len(v)
	if kind == reading.KindEvent {
		// A buffer_evicted report that is itself evicted passes its
		// ranges on to this round's report: the receiver still learns of
		// every gap.
		if r, err := decodeStored(seq, v); err == nil && r.Event != nil && r.Event.Type == "buffer_evicted" {
			e.ranges = append(e.ranges, parseRangeList(r.Event.Attrs["ranges"])...)
		}
	}
	if err := cur.Delete(); err != nil {
		e.err = err
		return nil, nil
	}
	if kind == reading.KindEvent {
		if err := e.urgent.Delete(kk[:]); err != nil {
			e.err = err
			return nil, nil
		}
	}
	e.c.remove(kind, size)
	e.c.Evicted++
	if n := len(e.ranges); n > 0 && e.ranges[n-1].To+1 == seq {
		e.ranges[n-1].To = seq
	} else {
		e.ranges = append(e.ranges, Range{seq, seq})
	}
	return cur.Seek(kk[:])
}

// thin drops interval readings oldest first, keeping one in keep of each
// meter's, so a long outage leaves a coarser but complete history instead of
// a hole. It resumes where the last round stopped (ThinMark); when it has
// thinned everything once it starts again from the oldest, coarser each
// time (ThinLevel), until each meter is down to one reading.
func (e *evictor) thin(keep int) {
	if keep <= 1 {
		return
	}
	c := e.c
	cur := e.recs.Cursor()
	fromStart := c.ThinMark == 0
	dropped := false
	perMeter := map[string]int{}
	k, v := cur.Seek(seqKey(c.ThinMark + 1))
	for e.need() && c.ByKind[reading.KindReading] > 0 {
		if k == nil || keySeq(k) >= e.below {
			if fromStart && !dropped {
				return // nothing left to thin
			}
			c.ThinLevel++
			c.ThinMark = 0
			fromStart, dropped = true, false
			clear(perMeter)
			k, v = cur.First()
			continue
		}
		seq := keySeq(k)
		c.ThinMark = seq
		if recordKind(v) == reading.KindReading {
			m := readingMeter(v)
			n := perMeter[string(m)]
			perMeter[string(m)] = n + 1
			if n%keep != 0 {
				k, v = e.drop(cur, k, v)
				dropped = true
				continue
			}
		}
		k, v = cur.Next()
	}
}

// oldest drops whole records, oldest first, one kind after another in
// evictOrder.
func (e *evictor) oldest() {
	for _, kind := range evictOrder {
		if !e.need() {
			return
		}
		if e.c.ByKind[kind] == 0 {
			continue
		}
		cur := e.recs.Cursor()
		for k, v := cur.First(); k != nil && keySeq(k) < e.below && e.need(); {
			if recordKind(v) == kind {
				k, v = e.drop(cur, k, v)
				continue
			}
			k, v = cur.Next()
		}
	}
}

// evictTx enforces the bounds inside a commit. It returns the evicted
// ranges, which it has also reported in buffer_evicted events appended in
// the same transaction, so the receiver learns of a gap in the same breath
// as it could see it.
func (b *Buffer) evictTx(tx *bolt.Tx, c *counters, below uint64, forSpace uint64) ([]Range, error) {
	e := &evictor{recs: records(tx), urgent: tx.Bucket(bucketUrgent), c: c, below: below}
	reason := ""
	switch {
	case forSpace > 0:
		// Out of disk: free what the commit needs, whole records only.
		// Thinning rewrites every page it touches and would need the very
		// space that is missing.
		e.maxRecords, e.maxBytes = c.Count, c.Bytes-min(c.Bytes, forSpace)
		reason = "disk_full"
	case c.Count > uint64(b.opt.MaxRecords):
		reason = "max_records"
	case c.Bytes+c.Journal > uint64(b.opt.MaxBytes):
		// The journal cannot be evicted (its stage drops it at its next
		// checkpoint): the records make room for it.
		reason = "max_bytes"
	default:
		return nil, nil
	}
	if forSpace == 0 {
		e.maxRecords = uint64(float64(b.opt.MaxRecords) * b.opt.EvictTo)
		e.maxBytes = sub(uint64(float64(b.opt.MaxBytes)*b.opt.EvictTo), c.Journal)
		e.thin(b.opt.ThinKeep)
	}
	e.oldest()
	if e.err != nil {
		return nil, e.err
	}
	if len(e.ranges) == 0 {
		return nil, nil
	}
	rs := mergeRanges(e.ranges)
	c.Evictions++
	var total uint64
	for _, r := range rs {
		total += r.To - r.From + 1
	}
	if err := rangeEventsTx(tx, c, rs, reason, "buffer full ("+reason+"): evicted"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	recent := append(append([]Range(nil), b.ranges...), rs...)
	b.mu.Unlock()
	if len(recent) > recentRanges {
		recent = recent[len(recent)-recentRanges:]
	}
	if err := tx.Bucket(bucketMeta).Put(keyRanges, encodeRanges(recent)); err != nil {
		return nil, err
	}
	tx.OnCommit(func() {
		b.mu.Lock()
		b.ranges = recent
		b.mu.Unlock()
	})
	b.log.WithFields(logrus.Fields{"reason": reason, "evicted": total, "ranges": len(rs),
		"first": rs[0].From, "last": rs[len(rs)-1].To, "held": c.Count}).Warn("buffer full: evicted records")
	return rs, nil
}

// evictForSpace runs when a commit failed for lack of space. Deleting
// records is itself a commit that needs a few new pages (bbolt never
// overwrites a page in place), and a file at its cap has none free: under
// MaxSize it may use a little headroom (two growth steps) past the cap. On a
// disk that is truly full there is no such headroom; if the file has no
// free page then, Append keeps failing with ErrFull until space appears.
func (b *Buffer) evictForSpace(need uint64) (evicted uint64, err error) {
	if b.dbh().MaxSize > 0 {
		// Only the committer writes, and it is here: no transaction reads
		// MaxSize concurrently.
		limit := b.dbh().MaxSize
		b.dbh().MaxSize = limit + 2*spaceStep
		defer func() { b.dbh().MaxSize = limit }()
	}
	var c counters
	var cursor uint64
	err = b.update(func(tx *bolt.Tx) error {
		b.mu.Lock()
		c = b.ctr
		b.mu.Unlock()
		before := c.Evicted
		if _, err := b.evictTx(tx, &c, c.LastSeq+1, need); err != nil {
			return err
		}
		evicted = c.Evicted - before
		cursor = cursorTx(tx, &c)
		return tx.Bucket(bucketMeta).Put(keyCounters, c.encode())
	})
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	b.ctr = c
	b.cursor = cursor
	b.mu.Unlock()
	return evicted, nil
}

// parseRangeList reads a buffer_evicted event's "ranges" attribute
// ("1-3,5"); what does not parse is skipped.
func parseRangeList(s string) []Range {
	var out []Range
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			continue
		}
		to := from
		if isRange {
			if to, err = strconv.ParseUint(b, 10, 64); err != nil || to < from {
				continue
			}
		}
		out = append(out, Range{from, to})
	}
	return out
}

func mergeRanges(rs []Range) []Range {
	sort.Slice(rs, func(i, j int) bool { return rs[i].From < rs[j].From })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].To+1 >= r.From {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// rangeEventsTx appends buffer_evicted events naming every seq of rs, split
// over several events when there are many: the receiver tells loss from
// delay by them. what starts the message ("buffer full (max_bytes): evicted").
func rangeEventsTx(tx *bolt.Tx, c *counters, rs []Range, reason, what string) error {
	now := time.Now().UTC()
	for i := 0; i < len(rs); i += rangesPerEvent {
		chunk := rs[i:min(i+rangesPerEvent, len(rs))]
		var n uint64
		parts := make([]string, len(chunk))
		for j, r := range chunk {
			n += r.To - r.From + 1
			parts[j] = r.String()
		}
		ev := reading.Event{Time: now, Type: "buffer_evicted",
			Message: fmt.Sprintf("%s %d records in %d ranges between %d and %d (attribute ranges lists them)",
				what, n, len(chunk), chunk[0].From, chunk[len(chunk)-1].To),
			Attrs: map[string]string{"reason": reason, "ranges": strings.Join(parts, ","), "count": fmt.Sprint(n),
				"first": fmt.Sprint(chunk[0].From), "last": fmt.Sprint(chunk[len(chunk)-1].To)}}
		if err := appendEventTx(tx, c, &ev); err != nil {
			return err
		}
	}
	return nil
}
