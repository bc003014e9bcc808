package buffer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

type opKind uint8

const (
	opAppend opKind = iota
	opAck
	opAckUpTo
	opEnsure
)

// op is one caller's request to the committer. The committer fills seqs
// and err, then closes done.
type op struct {
	kind   opKind
	vals   [][]byte // opAppend: encoded records
	seqs   []uint64 // opAppend: assigned; opAck: to delete
	upTo   uint64   // opAckUpTo; opEnsure: every seq held and to come above it
	states []State  // opAppend: side-state written in the same transaction
	jour   Journal  // opAppend: journal change in the same transaction (journal.go)
	err    error
	done   chan struct{}
}

func (o *op) weight() int {
	if o.kind == opAppend {
		return len(o.vals) + len(o.states)
	}
	return len(o.seqs) + 1
}

// Append stores records and returns their sequence numbers, consecutive and
// in the order given, once they are on disk. Concurrent Appends share one
// transaction and one fsync. If ctx ends first, Append returns ctx.Err() and
// the records may or may not have been stored.
func (b *Buffer) Append(ctx context.Context, recs ...reading.Record) ([]uint64, error) {
	return b.AppendWithState(ctx, nil, recs...)
}

// State is one side-state key and value (nil deletes the key).
type State struct {
	Key   string
	Value []byte
}

// AppendWithState is Append that also writes side-state in the same
// transaction: a stage that keeps state about what it has emitted (the
// filter's held-back intervals) is on disk exactly as far as its records
// are, whenever the process dies.
func (b *Buffer) AppendWithState(ctx context.Context, states []State, recs ...reading.Record) ([]uint64, error) {
	return b.appendOp(ctx, states, Journal{}, recs)
}

func (b *Buffer) appendOp(ctx context.Context, states []State, j Journal, recs []reading.Record) ([]uint64, error) {
	if len(recs) == 0 && len(states) == 0 && len(j.Entry) == 0 && !j.Drop {
		return nil, nil
	}
	for _, st := range states {
		if st.Key == "" {
			return nil, fmt.Errorf("buffer: empty state key")
		}
	}
	o := &op{kind: opAppend, vals: make([][]byte, len(recs))}
	if len(j.Entry) > 0 {
		j.Entry = append([]byte(nil), j.Entry...)
	}
	o.jour = j
	for _, st := range states {
		v := st.Value
		if v != nil {
			// Copied: the caller may reuse v before the commit; an empty
			// value stays a value, distinct from a deletion (nil).
			v = append(make([]byte, 0, len(v)), v...)
		}
		o.states = append(o.states, State{Key: st.Key, Value: v})
	}
	buf := make([]byte, 0, 112*len(recs))
	for i := range recs {
		start := len(buf)
		var err error
		if buf, err = appendRecord(buf, &recs[i]); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		// Earlier slices keep the old backing array if buf grows: still valid.
		o.vals[i] = buf[start:len(buf):len(buf)]
	}
	if err := b.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.seqs, nil
}

// Ack marks records delivered and deletes them. Sequence numbers already
// acknowledged or evicted are ignored; one never assigned is an error.
func (b *Buffer) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	return b.submit(context.Background(), &op{kind: opAck, seqs: append([]uint64(nil), seqs...)})
}

// AckUpTo acknowledges every record with a sequence number up to seq.
func (b *Buffer) AckUpTo(seq uint64) error {
	return b.submit(context.Background(), &op{kind: opAckUpTo, upTo: seq})
}

// EnsureAbove makes every seq of a record not yet acknowledged, and every
// seq to come, greater than seq: the uplink calls it before it publishes,
// with the last seq its own retained status says this gateway published,
// so that a fresh file (a lost card, a box whose clock says 1970) never
// sends an id the receiver already has. When a held record is at or below
// seq, every held record is renumbered in one transaction, in order, from
// max(seq, last seq assigned)+1 (above anything this file may have sent),
// each bound to its new seq (its CRC covers it); otherwise nothing moves
// and only the seqs to come are raised. The seq floor file is written
// first (seqfloor.go), so the promise survives the loss of the buffer
// file. Call it before any record of the file has been published: a
// record read and sent before the call goes out again under its new seq.
// It holds every record in memory while it renumbers: meant for the small
// file a fresh start has, it works for any.
func (b *Buffer) EnsureAbove(seq uint64) error {
	return b.submit(context.Background(), &op{kind: opEnsure, upTo: seq})
}

func (b *Buffer) submit(ctx context.Context, o *op) error {
	o.done = make(chan struct{})
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case b.ops <- o:
	case <-ctx.Done():
		b.closeMu.RUnlock()
		return ctx.Err()
	}
	b.closeMu.RUnlock()
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the committer: it takes what is queued, up to MaxBatch records,
// and commits it as one transaction. While it waits for the disk, the next
// batch queues up, so the batch size follows the load by itself.
func (b *Buffer) run() {
	defer close(b.stopped)
	// A page that goes bad under a running daemon (the SD card again) must
	// fail the commit, not kill the process: see guard.
	debug.SetPanicOnFault(true)
	var batch []*op
	busy := false
	for {
		batch = batch[:0]
		select {
		case o := <-b.ops:
			batch = append(batch, o)
		case bp := <-b.bad:
			if bp.db == b.dbh() && (b.broken == nil || time.Since(b.brokenAt) >= brokenRetry) {
				b.replace(bp.err)
			}
			continue
		case <-b.quit:
			// Close waits until nobody can queue any more; commit the rest.
			for {
				batch = b.gather(batch[:0], 0)
				if len(batch) == 0 {
					return
				}
				b.commit(batch)
			}
		}
		if busy {
			// The producers the last commit released are runnable but may
			// not have queued again yet: let them, so they share this fsync.
			runtime.Gosched()
		}
		batch = b.gather(batch, batch[0].weight())
		busy = len(batch) > 1
		b.commit(batch)
	}
}

func (b *Buffer) gather(batch []*op, n int) []*op {
	for n < b.opt.MaxBatch {
		select {
		case o := <-b.ops:
			batch = append(batch, o)
			n += o.weight()
		default:
			return batch
		}
	}
	return batch
}

func (b *Buffer) commit(batch []*op) {
	if b.broken != nil {
		err := fmt.Errorf("salvage failed %s ago, tried again after %s", time.Since(b.brokenAt).Round(time.Second), brokenRetry)
		if time.Since(b.brokenAt) >= brokenRetry {
			err = b.replace(b.broken)
		}
		if err != nil {
			err = classify(fmt.Errorf("%w: the damaged file could not be replaced yet: %w", ErrCorrupt, err))
			for _, o := range batch {
				o.seqs, o.err = nil, err
				close(o.done)
			}
			return
		}
	}
	// Make room for this batch and no more: its encoded size (freed pages
	// hold bbolt's overhead too), at least a few pages' worth so that a
	// full disk costs one eviction round per many commits, not one each.
	need := uint64(64 << 10)
	var size uint64
	for _, o := range batch {
		for _, v := range o.vals {
			size += uint64(len(v))
		}
	}
	need = max(need, 2*size)
	if b.sp.short && size > 0 {
		// The disk could not restore the reserve: a commit growing the
		// file now would take the blocks the eviction commit needs, so
		// the batch gets room from the oldest records instead.
		if _, err := b.evictForSpace(need); err != nil {
			b.log.WithField("error", err.Error()).Error("evicting for space failed")
		}
	}
	// Moving records to the backlog needs new pages for a while (the moved
	// records are written again before their old leaves are freed): not
	// while space is short, and not at the price of an eviction. A move
	// that did not fit waits a span before it is tried again.
	b.mu.Lock()
	last, held := b.ctr.LastSeq, b.ctr.Count
	b.mu.Unlock()
	move := !b.sp.short && last >= b.sp.moveHold
	// The floor file first: no seq this commit can assign is above it.
	var n uint64
	top := last
	for _, o := range batch {
		n += uint64(len(o.vals))
		if o.kind == opEnsure {
			top = max(top, o.upTo) + held
		}
	}
	err := b.ensureFloor(top + n + floorSlack)
	if err == nil {
		err = b.apply(batch, move)
	}
	if errors.Is(err, ErrCorrupt) && b.replace(err) == nil {
		err = b.apply(batch, move) // on the fresh file
	}
	if isFull(err) && move {
		b.sp.moveHold = last + uint64(b.opt.hotSpan)
		err = b.apply(batch, false)
	}
	if isFull(err) {
		b.mu.Lock()
		b.ctr.FullHits++
		b.mu.Unlock()
		for try := 0; isFull(err) && try < 10; try++ {
			n, eerr := b.evictForSpace(need << try)
			if eerr != nil {
				b.log.WithField("error", eerr.Error()).Error("evicting for space failed")
				break
			}
			if n == 0 {
				break // nothing left to evict
			}
			err = b.apply(batch, false)
		}
		if isFull(err) {
			err = fmt.Errorf("%w: %w", ErrFull, err)
		}
	}
	err = classify(err)
	for _, o := range batch {
		if err != nil {
			o.seqs, o.err = nil, err
		}
		close(o.done)
	}
	b.keepReserve()
}

// apply runs one batch as one transaction. Per-op problems (an unknown
// sequence number) go to that op; only storage errors fail the batch. move
// lets it move the older records to the backlog first (backlog.go).
func (b *Buffer) apply(batch []*op, move bool) (err error) {
	var c counters
	var cursor uint64
	var evicted []Range
	added := false
	var jkeys [][]byte
	var jnext, hotFrom uint64
	err = b.update(func(tx *bolt.Tx) error {
		b.mu.Lock()
		c = b.ctr
		jkeys, jnext, hotFrom = append(jkeys[:0], b.jkeys...), b.jnext, b.hotFrom
		b.mu.Unlock()
		recs := records(tx)
		// Keys only ever grow: full pages waste nothing.
		recs.hot.FillPercent = 1.0
		if move && c.LastSeq >= hotFrom+uint64(b.opt.hotSpan) {
			if err := moveToBacklog(recs, c.LastSeq+1); err != nil {
				return err
			}
			hotFrom = c.LastSeq + 1
		}
		urgent := tx.Bucket(bucketUrgent)
		urgent.FillPercent = 1.0
		firstNew := c.LastSeq + 1
		for _, o := range batch {
			o.err = nil
			switch o.kind {
			case opAppend:
				keys := make([]byte, 8*len(o.vals))
				o.seqs = make([]uint64, len(o.vals))
				for i, v := range o.vals {
					c.LastSeq++
					k := keys[8*i : 8*i+8]
					putSeq(k, c.LastSeq)
					seal(v, c.LastSeq) // again on a retry: the seq may differ
					if err := recs.Put(k, v); err != nil {
						return err
					}
					kind := recordKind(v)
					if kind == reading.KindEvent {
						if err := urgent.Put(k, nil); err != nil {
							return err
						}
					}
					c.add(kind, len(v))
					c.Appended++
					o.seqs[i] = c.LastSeq
				}
				if len(o.states) > 0 {
					st := tx.Bucket(bucketState)
					// Side state grows at its end (the filter's journal):
					// full leaves split less often, and a split rewrites
					// the bucket's branch too.
					st.FillPercent = 1.0
					for _, kv := range o.states {
						var err error
						if kv.Value == nil {
							err = st.Delete([]byte(kv.Key))
						} else {
							err = st.Put([]byte(kv.Key), kv.Value)
						}
						if err != nil {
							return err
						}
					}
				}
				if err := journalTx(recs.hot, &c, o.jour, &jkeys, &jnext); err != nil {
					return err
				}
				added = added || len(o.vals) > 0
			case opAck:
				for _, s := range o.seqs {
					if s > c.LastSeq || s == 0 {
						o.err = fmt.Errorf("%w: %d (last is %d)", ErrUnknownSeq, s, c.LastSeq)
						continue
					}
					k := seqKey(s)
					if v := recs.Get(k); v != nil {
						if err := deleteRecord(recs, urgent, &c, k, v); err != nil {
							return err
						}
						c.Acked++
					}
				}
			case opEnsure:
				first, err := renumberTx(tx, &c, o.upTo)
				if err != nil {
					return err
				}
				if first != 0 {
					hotFrom = first
					added = true
				}
			case opAckUpTo:
				if o.upTo > c.LastSeq {
					o.err = fmt.Errorf("%w: %d (last is %d)", ErrUnknownSeq, o.upTo, c.LastSeq)
					continue
				}
				cur := recs.Cursor()
				for k, v := cur.First(); k != nil && keySeq(k) <= o.upTo; {
					var kk [8]byte
					copy(kk[:], k)
					kind, size := recordKind(v), len(v)
					if err := cur.Delete(); err != nil {
						return err
					}
					if kind == reading.KindEvent {
						if err := urgent.Delete(kk[:]); err != nil {
							return err
						}
					}
					c.remove(kind, size)
					c.Acked++
					k, v = cur.Seek(kk[:])
				}
			}
		}
		var err error
		if evicted, err = b.evictTx(tx, &c, firstNew, 0); err != nil {
			return err
		}
		if len(evicted) > 0 {
			added = true
		}
		cursor = cursorTx(tx, &c)
		return tx.Bucket(bucketMeta).Put(keyCounters, c.encode())
	})
	if err != nil {
		return err
	}
	b.commits.Add(1)
	b.mu.Lock()
	b.ctr = c
	b.cursor = cursor
	b.jkeys, b.jnext, b.hotFrom = jkeys, jnext, hotFrom
	b.mu.Unlock()
	if added {
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

// deleteRecord removes one record (by key, not through a cursor).
func deleteRecord(recs recTree, urgent *bolt.Bucket, c *counters, k, v []byte) error {
	kind, size := recordKind(v), len(v)
	if err := recs.Delete(k); err != nil {
		return err
	}
	if kind == reading.KindEvent {
		if err := urgent.Delete(k); err != nil {
			return err
		}
	}
	c.remove(kind, size)
	return nil
}

// appendEventTx appends an event of the buffer's own inside tx.
func appendEventTx(tx *bolt.Tx, c *counters, ev *reading.Event) error {
	v, err := appendRecord(nil, &reading.Record{Kind: reading.KindEvent, Event: ev})
	if err != nil {
		return err
	}
	c.LastSeq++
	k := seqKey(c.LastSeq)
	seal(v, c.LastSeq)
	if err := tx.Bucket(bucketRecords).Put(k, v); err != nil {
		return err
	}
	if err := tx.Bucket(bucketUrgent).Put(k, nil); err != nil {
		return err
	}
	c.add(reading.KindEvent, len(v))
	c.Appended++
	return nil
}

// cursorTx: everything before the oldest record held has been acknowledged
// or evicted.
func cursorTx(tx *bolt.Tx, c *counters) uint64 {
	if k, _ := records(tx).Cursor().First(); k != nil {
		return keySeq(k) - 1
	}
	return c.LastSeq
}

// guard turns a panic inside bbolt (its assertions on a damaged page, or a
// fault on a page the disk lost) into ErrCorrupt for the caller, and any
// other panic into ErrPanic (panic.go).
func (b *Buffer) guard(err *error) {
	if r := recover(); r != nil {
		*err = recovered(r, b.log)
	}
}

// update is bbolt's Update, except after a panic. bbolt's Update rolls back
// "physically" then, which with NoFreelistSync rebuilds the free list by
// walking the tree on a goroutine of its own: the bad page that caused the
// panic would panic again there, where nobody can recover, and take the
// daemon down. A plain Rollback only forgets the transaction's allocations;
// the file is untouched either way, since the commit never completed.
func (b *Buffer) update(fn func(*bolt.Tx) error) (err error) {
	tx, err := b.dbh().Begin(true)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = recovered(r, b.log)
			if tx.DB() != nil {
				_ = tx.Rollback()
			}
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Check reports whether Append would refuse r (ErrInvalidRecord): a caller
// holding a batch can drop the one bad record instead of the batch.
func Check(r *reading.Record) error {
	_, err := appendRecord(nil, r)
	return err
}

// Encode is the buffer's encoding of one record (without its seq), for a
// stage that keeps records of its own in side state; Decode reverses it.
func Encode(r *reading.Record) ([]byte, error) { return appendRecord(nil, r) }

// Decode is the inverse of Encode.
func Decode(b []byte) (reading.Record, error) { return decodeRecord(b) }

// brokenRetry is how often the committer tries again to replace a damaged
// file whose salvage failed; the commits in between fail at once (a
// salvage reads the whole file: not one per commit).
const brokenRetry = 5 * time.Second

// floorSlack covers the seqs a commit may assign beyond its records: the
// buffer_evicted events of an eviction round, the buffer's own events.
const floorSlack = 4096

// classify makes every error of a commit one of the documented kinds
// (errors.go), so that a caller can tell what to do with errors.Is: full
// (evicting did not help: retry later), corrupt (the file was salvaged:
// retry), a panic (a bug), closed, or else a disk error (retry).
func classify(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrFull), errors.Is(err, ErrCorrupt), errors.Is(err, ErrPanic),
		errors.Is(err, ErrClosed), errors.Is(err, ErrIO):
		return err
	case isFull(err):
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return fmt.Errorf("%w: %w", ErrIO, err)
}

// renumberTx gives every held record a seq above above (EnsureAbove), in
// order, from max(above, last seq)+1, when any of them is at or below it;
// else it only raises the last seq. It returns the first new seq (0 when
// nothing moved). Thinning's mark follows the records it covered.
func renumberTx(tx *bolt.Tx, c *counters, above uint64) (first uint64, err error) {
	recs, urgent := records(tx), tx.Bucket(bucketUrgent)
	cur := recs.Cursor()
	k, _ := cur.First()
	if k == nil || keySeq(k) > above {
		c.LastSeq = max(c.LastSeq, above)
		return 0, nil
	}
	var held []kv
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		held = append(held, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
	}
	for _, e := range held {
		if err := recs.Delete(e.k); err != nil {
			return 0, err
		}
		if err := urgent.Delete(e.k); err != nil {
			return 0, err
		}
	}
	first = max(above, c.LastSeq) + 1
	thin := uint64(0)
	for i, e := range held {
		s := first + uint64(i)
		if keySeq(e.k) <= c.ThinMark {
			thin = s
		}
		k := seqKey(s)
		if err := recs.Put(k, reseal(e.v, keySeq(e.k), s)); err != nil {
			return 0, err
		}
		if recordKind(e.v) == reading.KindEvent {
			if err := urgent.Put(k, nil); err != nil {
				return 0, err
			}
		}
	}
	c.ThinMark = thin
	c.LastSeq = first + uint64(len(held)) - 1
	return first, nil
}
