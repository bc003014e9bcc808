package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
)

// salvage copies what can still be read from a file that failed its checks
// into a fresh file, which then takes its place; the damaged file is moved
// aside as quarantine does. A damaged key or page costs the records it
// holds, not the file: records keep their seqs (they have not been sent),
// side state and counters come along. It gives up (returns an error, and
// the caller quarantines the whole file) when the file cannot even be
// opened read-only, its meta pages both gone.
func salvage(path string, opt Options, why error, log logrus.FieldLogger) (rec *Recovery, err error) {
	tmp := path + ".salvage"
	os.Remove(tmp)
	kept, lost, err := copyReadable(path, tmp, opt)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	rec, err = quarantine(path, why, log)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("putting the salvaged buffer in place: %w", err)
	}
	syncDir(dirOf(path))
	rec.Salvaged, rec.Lost = kept, lost
	log.WithFields(logrus.Fields{"path": path, "salvaged": kept, "lost_at_least": lost}).
		Warn("buffer: readable records of the damaged file kept in a fresh file")
	return rec, nil
}

func dirOf(path string) string {
	if i := bytes.LastIndexByte([]byte(path), os.PathSeparator); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// copyReadable copies src's buckets into a new file dst, skipping what does
// not read: keys of the records bucket that are not 8 bytes, out of order
// or beyond the last seq, and pages that fault or fail bbolt's assertions.
func copyReadable(src, dst string, opt Options) (kept, lost uint64, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	ro, err := openReadOnly(src, opt)
	if err != nil {
		return 0, 0, err
	}
	defer ro.Close()
	db, err := bolt.Open(dst, 0o600, boltOptions(opt))
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	var c counters
	haveCounters := false
	meta := map[string][]byte{}
	state := map[string][]byte{}
	err = db.Update(func(w *bolt.Tx) error {
		for _, name := range [][]byte{bucketRecords, bucketBacklog, bucketUrgent, bucketMeta, bucketState} {
			if _, err := w.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	// Side buckets first: small, and the counters bound the records' keys.
	readBucket(ro, bucketMeta, func(k, v []byte) { meta[string(k)] = append([]byte(nil), v...) })
	readBucket(ro, bucketState, func(k, v []byte) { state[string(k)] = append([]byte(nil), v...) })
	if v, ok := meta[string(keyCounters)]; ok && c.decode(v) == nil {
		haveCounters = true
	}
	// Records: in runs, each its own read transaction, so that a page that
	// panics costs the run from it to the next readable key.
	var next uint64 = 1
	for step := uint64(1); ; {
		var batch [][2][]byte
		last, ok := readRun(ro, next, 10000, func(k, v []byte) bool {
			s := keySeq(k)
			if len(k) != 8 || (haveCounters && s > c.LastSeq) {
				lost++
				return false
			}
			batch = append(batch, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
			return true
		})
		if len(batch) > 0 {
			if err := db.Update(func(w *bolt.Tx) error {
				recs, urgent := w.Bucket(bucketRecords), w.Bucket(bucketUrgent)
				recs.FillPercent = 1.0
				for _, kv := range batch {
					if err := recs.Put(kv[0], kv[1]); err != nil {
						return err
					}
					if recordKind(kv[1]) == 4 { // an event: indexed for ReadUrgent
						if err := urgent.Put(kv[0], nil); err != nil {
							return err
						}
					}
				}
				return nil
			}); err != nil {
				return 0, 0, err
			}
			kept += uint64(len(batch))
		}
		switch {
		case ok && last == 0:
			// Done: nothing at or after next.
			return kept, lost, db.Update(func(w *bolt.Tx) error {
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
			next, step = last+1, 1
		default:
			// A page that does not read: skip forward, further each time,
			// until a key after it does.
			if last >= next {
				next = last + 1
			}
			next += step
			step *= 2
			lost++
			if step > 1<<40 || (haveCounters && next > c.LastSeq) {
				return kept, lost, errors.New("salvage: no readable record past a damaged page")
			}
		}
	}
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

// readRun reads up to n records from seq from on; fn says whether it took
// one. It returns the last seq taken (0 when there was none) and false when
// a page panicked on the way.
func readRun(db *bolt.DB, from uint64, n int, fn func(k, v []byte) bool) (last uint64, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
		}
	}()
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRecords) == nil {
			return nil
		}
		cur := records(tx).Cursor()
		var prev uint64
		for k, v := cur.Seek(seqKey(from)); k != nil && n > 0; k, v = cur.Next() {
			s := keySeq(k)
			if s <= prev {
				continue // out of order: a damaged key
			}
			if len(v) > 0 {
				_ = v[len(v)-1]
			}
			if fn(k, v) {
				prev, last = s, s
				n--
			}
		}
		return nil
	})
	return last, err == nil
}
