package buffer

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
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

// recTree is both buckets read as one, in key order. old is nil in a file
// from before the backlog opened read-only.
type recTree struct{ old, hot *bolt.Bucket }

func records(tx *bolt.Tx) recTree {
	return recTree{old: tx.Bucket(bucketBacklog), hot: tx.Bucket(bucketRecords)}
}

func (t recTree) Get(k []byte) []byte {
	if t.old != nil {
		if v := t.old.Get(k); v != nil {
			return v
		}
	}
	return t.hot.Get(k)
}

func (t recTree) Delete(k []byte) error {
	if t.old != nil && t.old.Get(k) != nil {
		return t.old.Delete(k)
	}
	return t.hot.Delete(k)
}

// Put appends: new records go to "records".
func (t recTree) Put(k, v []byte) error { return t.hot.Put(k, v) }

func (t recTree) Cursor() *recCursor {
	c := &recCursor{hot: t.hot.Cursor()}
	if t.old != nil {
		c.old = t.old.Cursor()
	}
	return c
}

// recCursor walks the backlog, then "records".
type recCursor struct {
	old, hot *bolt.Cursor
	inHot    bool
}

func (c *recCursor) First() ([]byte, []byte) {
	if c.old != nil {
		if k, v := c.old.First(); k != nil {
			c.inHot = false
			return k, v
		}
	}
	c.inHot = true
	return c.hot.First()
}

func (c *recCursor) Last() ([]byte, []byte) {
	if k, v := c.hot.Last(); k != nil || c.old == nil {
		c.inHot = true
		return k, v
	}
	c.inHot = false
	return c.old.Last()
}

func (c *recCursor) Next() ([]byte, []byte) {
	if c.inHot {
		return c.hot.Next()
	}
	if k, v := c.old.Next(); k != nil {
		return k, v
	}
	c.inHot = true
	return c.hot.First()
}

func (c *recCursor) Prev() ([]byte, []byte) {
	if !c.inHot {
		return c.old.Prev()
	}
	if k, v := c.hot.Prev(); k != nil || c.old == nil {
		return k, v
	}
	c.inHot = false
	return c.old.Last()
}

func (c *recCursor) Seek(k []byte) ([]byte, []byte) {
	if c.old != nil {
		if ck, v := c.old.Seek(k); ck != nil {
			c.inHot = false
			return ck, v
		}
	}
	c.inHot = true
	return c.hot.Seek(k)
}

func (c *recCursor) Delete() error {
	if c.inHot {
		return c.hot.Delete()
	}
	return c.old.Delete()
}

// moveToBacklog moves the records of "records" below seq below to the
// backlog, leaving the journal entries where they are. It does nothing if
// that would break the order of the two (a backlog key at or above the
// oldest record in "records": never written so, but a move must not make a
// damaged file worse).
func moveToBacklog(t recTree, below uint64) error {
	t.old.FillPercent = 1.0
	cur := t.hot.Cursor()
	k, v := cur.First()
	for k != nil && isJournalKey(k) {
		k, v = cur.Next()
	}
	if k == nil {
		return nil
	}
	if last, _ := t.old.Cursor().Last(); last != nil && bytes.Compare(last, k) >= 0 {
		return nil
	}
	for k != nil && (isJournalKey(k) || keySeq(k) < below) {
		if isJournalKey(k) {
			k, v = cur.Next()
			continue
		}
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
