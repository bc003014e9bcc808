package buffer

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// The key space of the records. Two buckets hold the records ("backlog",
// the older ones, and "records", the newest: backlog.go), and "records"
// holds the journal's entries too (journal.go), each keyed right after the
// record its commit wrote last so that it lands in the leaf the commit
// writes anyway. Two kinds of keys therefore share the tree:
//
//	record         seq (8 bytes, big-endian)
//	journal entry  seq of the record before it (8) + counter (8): 16 bytes
//
// This file is the one place that tells them apart. Every walker over the
// records goes through recTree's Cursor, which never stops at a journal
// entry. Only Open's check of the file (recount) sees every key, through
// keyCursor, since a damaged key may look like either kind: journalEntry
// says which it is. A Get or Delete by an 8-byte seq cannot meet a 16-byte
// key.
//
// Why the journal is not in a bucket of its own (format 3 would have been
// the time): any other bucket is a path of pages of its own that a commit
// rewrites beside the records' leaf. bbolt keeps a bucket inline in its
// parent's page only under a quarter page (1 KiB) and never a bucket that
// holds buckets, and the pipeline's journal grows to ~100 KB between two
// checkpoints (8,192 polls): measured, a bucket of its own costs its last
// leaf and its branch, about two 4 KiB pages a commit more (README.md,
// Journal).
const journalKeyLen = 16

func isJournalKey(k []byte) bool { return len(k) == journalKeyLen }

// journalEntry tells Open's check a journal entry from a record: a 16-byte
// key whose value does not start as an entry's is a record's damaged key.
func journalEntry(k, v []byte) bool {
	return isJournalKey(k) && bytes.HasPrefix(v, journalMagic[:])
}

// recTree is both buckets read as one, in key order. old is nil in a file
// from before the backlog opened read-only.
type recTree struct{ old, hot *bolt.Bucket }

func records(tx *bolt.Tx) recTree {
	return recTree{old: tx.Bucket(bucketBacklog), hot: tx.Bucket(bucketRecords)}
}

// Get and Delete take a record's key (8 bytes), never a journal entry's.
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

// Cursor walks the records, the backlog's first, passing the journal by.
func (t recTree) Cursor() *recCursor { return t.cursor(false) }

// keyCursor stops at every key: for Open's check (recount) only.
func (t recTree) keyCursor() *recCursor { return t.cursor(true) }

func (t recTree) cursor(every bool) *recCursor {
	c := &recCursor{hot: t.hot.Cursor(), every: every}
	if t.old != nil {
		c.old = t.old.Cursor()
	}
	return c
}

// recCursor stops only at records, or with every set at every key.
type recCursor struct {
	old, hot *bolt.Cursor
	inHot    bool
	every    bool
}

func (c *recCursor) First() ([]byte, []byte) { return c.skip(c.first, c.next) }
func (c *recCursor) Last() ([]byte, []byte)  { return c.skip(c.last, c.prev) }
func (c *recCursor) Next() ([]byte, []byte)  { return c.skip(c.next, c.next) }
func (c *recCursor) Prev() ([]byte, []byte)  { return c.skip(c.prev, c.prev) }

func (c *recCursor) Seek(k []byte) ([]byte, []byte) {
	return c.skip(func() ([]byte, []byte) { return c.seek(k) }, c.next)
}

// Delete removes the key the cursor stands on.
func (c *recCursor) Delete() error {
	if c.inHot {
		return c.hot.Delete()
	}
	return c.old.Delete()
}

// skip moves once, then on in the same direction past the journal.
func (c *recCursor) skip(move, on func() ([]byte, []byte)) ([]byte, []byte) {
	k, v := move()
	for k != nil && !c.every && isJournalKey(k) {
		k, v = on()
	}
	return k, v
}

// The moves over every key: the backlog, then "records".

func (c *recCursor) first() ([]byte, []byte) {
	if c.old != nil {
		if k, v := c.old.First(); k != nil {
			c.inHot = false
			return k, v
		}
	}
	c.inHot = true
	return c.hot.First()
}

func (c *recCursor) last() ([]byte, []byte) {
	if k, v := c.hot.Last(); k != nil || c.old == nil {
		c.inHot = true
		return k, v
	}
	c.inHot = false
	return c.old.Last()
}

func (c *recCursor) next() ([]byte, []byte) {
	if c.inHot {
		return c.hot.Next()
	}
	if k, v := c.old.Next(); k != nil {
		return k, v
	}
	c.inHot = true
	return c.hot.First()
}

func (c *recCursor) prev() ([]byte, []byte) {
	if !c.inHot {
		return c.old.Prev()
	}
	if k, v := c.hot.Prev(); k != nil || c.old == nil {
		return k, v
	}
	c.inHot = false
	return c.old.Last()
}

func (c *recCursor) seek(k []byte) ([]byte, []byte) {
	if c.old != nil {
		if ck, v := c.old.Seek(k); ck != nil {
			c.inHot = false
			return ck, v
		}
	}
	c.inHot = true
	return c.hot.Seek(k)
}
