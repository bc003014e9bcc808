package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The replay window: the ids of commands a gateway has accepted, each kept
// until the time after which a copy of it would be refused anyway (its
// token's expiry), so a command captured off the broker cannot be run twice,
// not even after a restart. A bucket of its own, created the first time it
// is used: the records' layout and the format version do not change, and a
// build that does not know the bucket leaves it alone. Salvage of a damaged
// file does not carry it over; the expiry check still refuses old tokens.
var bucketReplay = []byte("replay") // id → expiry (8 bytes, Unix nanoseconds, big-endian)

// ErrReplayed is returned by Remember for an id already in the window.
var ErrReplayed = errors.New("command id already used")

// Remember records id as used until the given time, in one fsynced
// transaction, and drops ids whose time has passed. It returns ErrReplayed
// (and records nothing) if id is already in the window. It is not part of
// the records' group commit: commands are rare, and the answer must be
// durable before the command runs.
func (b *Buffer) Remember(id string, until, now time.Time) error {
	if id == "" || len(id) > bolt.MaxKeySize {
		return fmt.Errorf("buffer: replay id of %d bytes", len(id))
	}
	b.closeMu.RLock()
	defer b.closeMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	return b.dbh().Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketReplay)
		if err != nil {
			return err
		}
		if v := bk.Get([]byte(id)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano() {
			return fmt.Errorf("%w: %q (kept until %s)", ErrReplayed, id, time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC().Format(time.RFC3339))
		}
		var stale [][]byte
		_ = bk.ForEach(func(k, v []byte) error {
			if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) <= now.UnixNano() {
				stale = append(stale, k)
			}
			return nil
		})
		for _, k := range stale {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(until.UnixNano()))
		return bk.Put([]byte(id), v[:])
	})
}
