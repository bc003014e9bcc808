package buffer

import (
	"bytes"
)

// The records live in two buckets: "records", the newest ones (and the
// journal, journal.go), and "backlog", the older ones, every key of which
// is below every record key in "records". A commit rewrites the path from
// the root to the leaf it appends to: the leaf, each branch level, the
// top-level bucket page and a meta page. In one bucket, a broker outage of
// a few hours (some 8,000 records of 70 bytes) makes that tree three levels
// deep, a page more a commit for as long as the backlog stays. Kept to a
// few thousand records, "records" stays at two levels whatever the backlog;
// the older records move to "backlog" in one go (moveToBacklog), where they
// fill whole leaves, written once.
var bucketBacklog = []byte("backlog")

// DefaultHotSpan is how many seqs "records" takes before they move: about
// 60 leaves of records, which with the journal between two checkpoints
// keeps the bucket's one branch page under its ~170 children.
const DefaultHotSpan = 2800

// moveToBacklog moves the records of "records" below seq below to the
// backlog, leaving the journal entries where they are. It does nothing if
// that would break the order of the two (a backlog key at or above the
// oldest record in "records": never written so, but a move must not make a
// damaged file worse).
func moveToBacklog(t recTree, below uint64) error {
	t.old.FillPercent = 1.0
	cur := recTree{hot: t.hot}.Cursor()
	k, v := cur.First()
	if k == nil {
		return nil
	}
	if last, _ := (recTree{hot: t.old}).Cursor().Last(); last != nil && bytes.Compare(last, k) >= 0 {
		return nil
	}
	for k != nil && keySeq(k) < below {
		var kk [8]byte
		copy(kk[:], k)
		// v points into the mapped file, valid for the transaction's life,
		// which is what Put asks of it.
		if err := t.old.Put(kk[:], v); err != nil {
			return err
		}
		if err := cur.Delete(); err != nil {
			return err
		}
		k, v = cur.Seek(kk[:])
	}
	return nil
}
