package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// tracker is one gateway's sequence as a receiver sees it: which records it
// has stored (to drop duplicates: delivery is at least once), up to where
// it has everything (what it acks), and the holes. A hole is a gap only
// after it has stayed open for a while, because events overtake a backlog
// of readings and the order of arrival is not the order of seqs. Records
// the gateway evicted (buffer_evicted events name them) are not gaps: the
// gateway said they are gone.
type tracker struct {
	gateway string
	next    uint64              // every seq below it is stored or accounted for; 0 = not started
	above   map[uint64]struct{} // stored seqs at or above next
	evicted map[uint64]struct{} // reported evicted, at or above next
	holeAt  map[uint64]time.Time
}

func newTracker(gw string) *tracker {
	return &tracker{gateway: gw, above: map[uint64]struct{}{}, evicted: map[uint64]struct{}{}, holeAt: map[uint64]time.Time{}}
}

// start sets where the gateway's sequence begins (status seq_base + 1), if
// nothing was seen yet.
func (t *tracker) start(base uint64) {
	if t.next == 0 {
		t.next = base + 1
	}
}

// record takes one record's seq; it says false for a duplicate.
func (t *tracker) record(seq uint64, now time.Time) bool {
	if t.next == 0 {
		t.next = seq // no status seen: start where the records start
	}
	if seq < t.next {
		return false
	}
	if _, dup := t.above[seq]; dup {
		return false
	}
	t.above[seq] = struct{}{}
	t.advance(now)
	return true
}

// evict accounts for the ranges of a buffer_evicted event ("5-9,12").
func (t *tracker) evict(ranges string, now time.Time) (n uint64) {
	for _, r := range strings.Split(ranges, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(r), "-")
		from, err1 := strconv.ParseUint(a, 10, 64)
		to, err2 := from, error(nil)
		if ok {
			to, err2 = strconv.ParseUint(b, 10, 64)
		}
		if err1 != nil || err2 != nil || to < from || to-from > 1<<24 {
			continue
		}
		for s := max(from, t.next); s <= to; s++ {
			t.evicted[s] = struct{}{}
		}
		n += to - from + 1
	}
	t.advance(now)
	return n
}

func (t *tracker) advance(now time.Time) {
	for {
		if _, ok := t.above[t.next]; ok {
			delete(t.above, t.next)
		} else if _, ok := t.evicted[t.next]; ok {
			delete(t.evicted, t.next)
		} else {
			break
		}
		delete(t.holeAt, t.next)
		t.next++
	}
	if len(t.above) > 0 {
		if _, ok := t.holeAt[t.next]; !ok {
			t.holeAt[t.next] = now
		}
	}
}

// gap is a range of seqs that never came and was not reported evicted.
type gap struct{ From, To uint64 }

func (g gap) String() string { return fmt.Sprintf("%d-%d", g.From, g.To) }

// gaps closes the hole at next when it has been open for longer than
// after: the receiver reports it and moves on, so it can ack what follows.
func (t *tracker) gaps(now time.Time, after time.Duration) []gap {
	var out []gap
	for {
		at, ok := t.holeAt[t.next]
		if !ok || now.Sub(at) < after || len(t.above) == 0 {
			return out
		}
		lo := t.next
		hi := lo
		for ; ; hi++ {
			_, a := t.above[hi+1]
			_, e := t.evicted[hi+1]
			if a || e {
				break
			}
		}
		delete(t.holeAt, lo)
		t.next = hi + 1
		out = append(out, gap{lo, hi})
		t.advance(now)
	}
}

// acked is the highest seq up to which everything is stored or accounted
// for: what an application ack confirms.
func (t *tracker) acked() uint64 {
	if t.next == 0 {
		return 0
	}
	return t.next - 1
}
