package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
)

// salvage copies what can still be read from a file that failed its checks
// (at Open) or went bad under the running buffer (replace.go) into a fresh
// file, which then takes its place; the damaged file is moved aside as
// quarantine does. A damaged key or page costs the records it holds, not
// the file: records keep their seqs (they have not been sent), side state
// and counters come along, and every seq that could not be kept is named
// in Recovery.LostRanges (init reports them in buffer_evicted events). It
// gives up (returns an error, and the caller quarantines the whole file)
// when the file cannot even be opened read-only, its meta pages both gone.
func salvage(path string, opt Options, why error, log logrus.FieldLogger) (rec *Recovery, err error) {
	tmp := path + ".salvage"
	os.Remove(tmp)
	res, err := copyReadable(path, tmp, opt)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	rec, err = moveAside(path, why, log, fmt.Sprintf(
		"BUFFER FILE DAMAGED: its %d readable records are kept in a fresh file and will be sent; %d held records could not be read; the damaged file is moved aside",
		res.kept, res.lost))
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("putting the salvaged buffer in place: %w", err)
	}
	syncDir(dirOf(path))
	res.fill(rec)
	return rec, nil
}

// Salvaged opens a read-only view of what Open would salvage from a damaged
// file, without touching it: the readable records are copied into a
// temporary file (in dir, or the system's temporary directory when dir is
// empty), which the returned Buffer uses and Close removes. Stats().Recovered
// says what was kept and lost. For inspection tools (tidegate buffer
// export|stats) on a file the daemon would salvage at its next start.
func Salvaged(path, dir string, opt Options) (*Buffer, error) {
	f, err := os.CreateTemp(dir, "tidegate-salvage-*.db")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp)
	res, err := copyReadable(path, tmp, opt)
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("%w: nothing could be salvaged: %w", ErrCorrupt, err)
	}
	rec := &Recovery{Reason: "salvaged read-only for inspection", At: opt.withDefaults().Clock().UTC()}
	res.fill(rec)
	opt.salvagedCopy = rec
	b, err := Open(tmp, opt)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return b, nil
}

func dirOf(path string) string {
	if i := bytes.LastIndexByte([]byte(path), os.PathSeparator); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// salvageResult is what copyReadable kept and could not keep.
type salvageResult struct {
	kept     uint64
	lost     uint64  // held records not kept: from the counters when they read
	ranges   []Range // every seq not kept that may have been held
	seqKnown bool    // the counters read: the last seq assigned is known
}

func (r salvageResult) fill(rec *Recovery) {
	rec.Salvaged, rec.Lost, rec.LostRanges, rec.seqKnown = r.kept, r.lost, r.ranges, r.seqKnown
}

// copyReadable copies src's buckets into a new file dst, skipping what does
// not read: keys of the records bucket that are not 8 bytes or beyond the
// last seq, and pages that fault or fail bbolt's assertions. A key out of
// order costs only itself, not the keys after it: a version-3 record is
// kept if its value matches its key (or as undecodable under its key when
// nothing else claims that seq), an older record out of order is dropped
// since nothing binds it to its key.
func copyReadable(src, dst string, opt Options) (res salvageResult, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	ro, err := openReadOnly(src, opt)
	if err != nil {
		return res, err
	}
	defer ro.Close()
	db, err := bolt.Open(dst, 0o600, boltOptions(opt))
	if err != nil {
		return res, err
	}
	defer db.Close()
	var c counters
	meta := map[string][]byte{}
	state := map[string][]byte{}
	err = db.Update(func(w *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := w.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	// Side buckets first: small, and the counters bound the records' keys.
	readBucket(ro, bucketMeta, func(k, v []byte) { meta[string(k)] = append([]byte(nil), v...) })
	readBucket(ro, bucketState, func(k, v []byte) { state[string(k)] = append([]byte(nil), v...) })
	if v, ok := meta[string(keyCounters)]; ok && c.decode(v) == nil {
		res.seqKnown = true
	}
	var evicted []Range
	if v, ok := meta[string(keyRanges)]; ok {
		evicted = decodeRanges(v)
	}
	var kept []uint64
	put := func(batch []kv) error {
		return db.Update(func(w *bolt.Tx) error {
			recs, urgent := w.Bucket(bucketRecords), w.Bucket(bucketUrgent)
			for _, e := range batch {
				s := keySeq(e.k)
				if old := recs.Get(e.k); old != nil {
					// Read twice (a run resumed before it), or a damaged
					// key landed on a seq held: the value that matches
					// the seq wins.
					if _, err := decodeStored(s, old); err == nil {
						continue
					}
					if _, err := decodeStored(s, e.v); err != nil {
						continue
					}
				} else {
					kept = append(kept, s)
				}
				if err := recs.Put(e.k, e.v); err != nil {
					return err
				}
				if recordKind(e.v) == 4 { // an event: indexed for ReadUrgent
					if err := urgent.Put(e.k, nil); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	// Records: in runs, each its own read transaction, so that a page that
	// panics costs the run from it to the next readable key.
	from := seqKey(1)
	for {
		batch, next, ok := readRun(ro, from, 10000, func(k []byte) bool {
			return len(k) == 8 && (!res.seqKnown || keySeq(k) <= c.LastSeq)
		})
		if len(batch) > 0 {
			if err := put(batch); err != nil {
				return res, err
			}
		}
		switch {
		case ok && next == nil:
			res.kept = uint64(len(kept))
			res.ranges, res.lost = lostRanges(kept, c, res.seqKnown, evicted)
			return res, db.Update(func(w *bolt.Tx) error {
				m, s := w.Bucket(bucketMeta), w.Bucket(bucketState)
				for k, v := range meta {
					if k == string(keyClean) {
						continue
					}
					if err := m.Put([]byte(k), v); err != nil {
						return err
					}
				}
				for k, v := range state {
					if err := s.Put([]byte(k), v); err != nil {
						return err
					}
				}
				if m.Get(keyFormat) == nil {
					return m.Put(keyFormat, []byte{fileFormat})
				}
				return nil
			})
		case ok:
			from = next
		default:
			// A page that does not read: find the first seq after the
			// last key read from which a seek reads again.
			var err error
			if from, err = skipBad(ro, next, res.seqKnown, c.LastSeq); err != nil {
				return res, err
			}
		}
	}
}

// allBuckets is every bucket of the file layout.
var allBuckets = [][]byte{bucketRecords, bucketBacklog, bucketUrgent, bucketMeta, bucketState}

type kv struct{ k, v []byte }

// skipBad finds the smallest seq above the key at (the last key read
// before a page panicked, or the seek that panicked) from which a run
// reads: doubling steps, then bisection, so that the records after a bad
// page are found again and not jumped over.
func skipBad(ro *bolt.DB, at []byte, seqKnown bool, last uint64) ([]byte, error) {
	lo := keySeq(at)
	reads := func(s uint64) bool {
		_, _, ok := readRun(ro, seqKey(s), 1, func([]byte) bool { return true })
		return ok
	}
	hi := uint64(0)
	for step := uint64(1); ; step *= 2 {
		s := lo + step
		if s < lo || step > 1<<62 || (seqKnown && s > last+1) {
			if seqKnown && reads(last+1) {
				hi = last + 1
				break
			}
			return nil, errors.New("salvage: no readable record past a damaged page")
		}
		if reads(s) {
			hi = s
			break
		}
		lo = s
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if reads(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return seqKey(hi), nil
}

// lostRanges names every seq that may have been held and was not kept:
// the gaps between the kept seqs up to the last seq assigned, less the
// ranges known to be evicted, and below the first kept seq as many as the
// counters say were held besides. Some of these may have been delivered
// already (acknowledged out of order): a receiver that has them loses
// nothing. lost is how many held records were not kept: from the
// counters when they read, else the gaps.
func lostRanges(kept []uint64, c counters, seqKnown bool, evicted []Range) ([]Range, uint64) {
	slices.Sort(kept)
	last := c.LastSeq
	if !seqKnown && len(kept) > 0 {
		last = kept[len(kept)-1]
	}
	var gaps []Range
	var n uint64
	prev := uint64(0)
	if len(kept) > 0 {
		prev = kept[0]
	}
	add := func(from, to uint64) {
		for _, r := range subtract(Range{from, to}, evicted) {
			gaps = append(gaps, r)
			n += r.To - r.From + 1
		}
	}
	for _, s := range kept[min(1, len(kept)):] {
		if s > prev+1 {
			add(prev+1, s-1)
		}
		prev = s
	}
	if len(kept) > 0 && last > prev {
		add(prev+1, last)
	}
	lost := n
	if seqKnown {
		lost = sub(c.Count, uint64(len(kept)))
		if lost > n && last > 0 {
			// Held records below the first kept one (or none kept).
			top := last
			if len(kept) > 0 {
				top = kept[0] - 1
			}
			extra := min(lost-n, top)
			if extra > 0 {
				gaps = append([]Range{{top - extra + 1, top}}, gaps...)
			}
		}
	}
	return mergeRanges(gaps), lost
}

// subtract is r less the ranges in out (sorted or not).
func subtract(r Range, out []Range) []Range {
	rs := []Range{r}
	for _, o := range out {
		var next []Range
		for _, x := range rs {
			if o.To < x.From || o.From > x.To {
				next = append(next, x)
				continue
			}
			if o.From > x.From {
				next = append(next, Range{x.From, o.From - 1})
			}
			if o.To < x.To {
				next = append(next, Range{o.To + 1, x.To})
			}
		}
		rs = next
	}
	return rs
}

func openReadOnly(path string, opt Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: opt.Timeout})
}

// readBucket calls fn for what it can read of a bucket.
func readBucket(db *bolt.DB, name []byte, fn func(k, v []byte)) {
	defer func() { _ = recover() }()
	_ = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error { fn(k, v); return nil })
	})
}

// readRun reads up to n records from key from on, in the order the pages
// hold them; take says whether a key is kept. It returns the records
// taken, where the next run starts (nil: at the end) and false when a page
// panicked on the way (next is then the last key read, or from). A key
// out of order with both its neighbours is a damaged key: a version-3
// record there is still taken (put checks it against its key), an older
// one is not.
func readRun(db *bolt.DB, from []byte, n int, take func(k []byte) bool) (out []kv, next []byte, ok bool) {
	next = from
	var pending *kv // the previous key, held until its successor is known
	var before uint64
	defer func() {
		if r := recover(); r != nil {
			if pending != nil {
				out = append(out, *pending)
			}
			ok = false
		}
	}()
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRecords) == nil {
			next = nil
			return nil
		}
		cur := records(tx).Cursor()
		k, v := cur.Seek(from)
		for ; k != nil; k, v = cur.Next() {
			if len(v) > 0 {
				_ = v[len(v)-1] // touches the last page of an overflowing value
			}
			next = append(next[:0:0], k...)
			if !take(k) {
				continue
			}
			e := kv{append([]byte(nil), k...), append([]byte(nil), v...)}
			if pending != nil {
				s, p := keySeq(e.k), keySeq(pending.k)
				spike := p > s && before < s
				if !spike || (len(pending.v) > 0 && pending.v[0] == formatV3) {
					out = append(out, *pending)
				}
				if !spike {
					before = p
				}
			}
			pending = &e
			if len(out) >= n {
				k, _ = cur.Next()
				break
			}
		}
		if k == nil {
			next = nil
		} else {
			next = append([]byte(nil), k...)
		}
		if pending != nil {
			out = append(out, *pending)
		}
		return nil
	})
	return out, next, err == nil
}
