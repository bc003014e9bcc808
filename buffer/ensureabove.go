package buffer

import (
	"context"
	"fmt"
)

// EnsureAbove makes every record the buffer holds or stores from now on
// carry a seq above floor: the uplink calls it with the last_seq of the
// gateway's own retained status before it publishes anything, so a fresh
// file numbered from a clock at 1970 never reuses an id the receiver has.
// Records held at or below floor are appended again (new seqs, in their
// order, after any held above floor) and then acknowledged under the old
// ones: a crash between the two sends them twice under new ids, never one
// id twice.
func (b *Buffer) EnsureAbove(floor uint64) error {
	if floor == 0 || b.LastSeq() > floor && b.firstHeld() > floor {
		return nil
	}
	if err := b.submit(context.Background(), &op{kind: opFloor, upTo: floor}); err != nil {
		return fmt.Errorf("buffer: raise seqs above %d: %w", floor, err)
	}
	for {
		recs, err := b.Read(0, 512)
		if err != nil {
			return fmt.Errorf("buffer: renumber below %d: %w", floor, err)
		}
		n := 0
		for n < len(recs) && recs[n].Seq <= floor {
			n++
		}
		if n == 0 {
			return nil
		}
		old := make([]uint64, n)
		for i := range recs[:n] {
			old[i], recs[i].Seq = recs[i].Seq, 0
		}
		if _, err := b.Append(context.Background(), recs[:n]...); err != nil {
			return fmt.Errorf("buffer: renumber below %d: %w", floor, err)
		}
		if err := b.Ack(old...); err != nil {
			return fmt.Errorf("buffer: renumber below %d: %w", floor, err)
		}
	}
}

// LastSeq is the highest seq the buffer has assigned (or been raised to).
func (b *Buffer) LastSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctr.LastSeq
}

// firstHeld is the seq of the oldest record held, or past LastSeq when none.
func (b *Buffer) firstHeld() uint64 {
	recs, err := b.Read(0, 1)
	if err != nil || len(recs) == 0 {
		return b.LastSeq() + 1
	}
	return recs[0].Seq
}

// SeqBase is the seq the file's numbering started above: it names the file.
func (b *Buffer) SeqBase() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctr.Base
}
