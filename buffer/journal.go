package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// The journal: side state that grows by a small entry per commit between
// checkpoints (the filter's polls since its last full states). Kept in the
// state bucket, each entry costs the commit two more pages of flash (the
// bucket's last leaf and its branch) beside the records' leaf and branch,
// root and meta: about six pages a commit. Kept in the records bucket, right
// after the commit's last record, an entry lands in the leaf the commit
// rewrites anyway and costs no page at all.
//
// A journal key is the seq of the record it follows (8 bytes, big-endian)
// and a counter (8 bytes): the records' cursor passes it by (keyspace.go,
// the one place that tells the two apart). The value starts with two bytes
// no record starts with (recordKind reads an unknown kind). Entries are not
// records: no seq of their own, not counted, never read, acknowledged or
// evicted. They go only when a commit says Drop (the stage wrote a
// checkpoint).
var journalMagic = [2]byte{0xfe, 0xff}

// Journal is what an AppendWithJournal adds to or removes from the journal,
// in the same transaction as its records and states.
type Journal struct {
	// Entry, if not empty, is appended to the journal.
	Entry []byte
	// Drop removes every entry written before this commit.
	Drop bool
}

// AppendWithJournal is AppendWithState that also appends to (or empties)
// the journal in the same transaction. See journal.go.
func (b *Buffer) AppendWithJournal(ctx context.Context, states []State, j Journal, recs ...reading.Record) ([]uint64, error) {
	return b.appendOp(ctx, states, j, recs)
}

// JournalEntries returns the journal's entries, oldest first.
func (b *Buffer) JournalEntries() ([][]byte, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	var out [][]byte
	err := b.dbh().View(func(tx *bolt.Tx) error {
		for _, k := range b.journalKeys() {
			v := tx.Bucket(bucketRecords).Get(k) // the journal is never moved to the backlog
			if v == nil {
				continue // dropped by a commit since the keys were taken
			}
			if len(v) < len(journalMagic) || !bytes.Equal(v[:2], journalMagic[:]) {
				return fmt.Errorf("%w: journal entry %x", ErrCorrupt, k)
			}
			out = append(out, append([]byte(nil), v[2:]...))
		}
		return nil
	})
	return out, err
}

func (b *Buffer) journalKeys() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.jkeys...)
}

// journalTx applies one op's journal change inside the committer's
// transaction. keys is the journal as of this transaction, updated in place;
// the committer keeps it only if the transaction commits.
func journalTx(recs *bolt.Bucket, c *counters, j Journal, keys *[][]byte, next *uint64) error {
	if j.Drop {
		for _, k := range *keys {
			if err := recs.Delete(k); err != nil {
				return err
			}
		}
		*keys = nil
		c.Journal = 0
	}
	if len(j.Entry) == 0 {
		return nil
	}
	k := make([]byte, journalKeyLen)
	binary.BigEndian.PutUint64(k[:8], c.LastSeq)
	binary.BigEndian.PutUint64(k[8:], *next)
	*next++
	v := make([]byte, 0, len(journalMagic)+len(j.Entry))
	v = append(append(v, journalMagic[:]...), j.Entry...)
	if err := recs.Put(k, v); err != nil {
		return err
	}
	c.Journal += uint64(len(v))
	*keys = append(*keys, k)
	return nil
}
