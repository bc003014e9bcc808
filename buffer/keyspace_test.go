package buffer

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// The records' cursor is the one walker over the records: it stops at
// every record of both buckets, in order, forward, backward and from any
// seek, and never at a journal entry, wherever the entries sit (before,
// between and after records, after a move to the backlog, after acks);
// the key cursor of Open's check sees both kinds. Before keyspace.go every
// caller skipped the entries itself (13 checks); this cursor returned them.
func TestRecordsCursorPassesJournalBy(t *testing.T) {
	b := openTest(t, filepath.Join(t.TempDir(), "buf.db"), Options{})
	defer b.Close()
	ctx := context.Background()
	entry := func() Journal { return Journal{Entry: []byte("polls")} }
	if _, err := b.AppendWithJournal(ctx, nil, entry()); err != nil { // an entry before any record
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := b.AppendWithJournal(ctx, nil, entry(), readingRec("m", 2*i), readingRec("m", 2*i+1)); err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 { // a commit of journal alone: two entries side by side
			if _, err := b.AppendWithJournal(ctx, nil, entry()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Ack(5, 6, 7, 30); err != nil { // holes, one across an entry
		t.Fatal(err)
	}
	var want []uint64
	for s := uint64(1); s <= 40; s++ {
		if s < 5 || s > 7 && s != 30 {
			want = append(want, s)
		}
	}
	entries, err := b.JournalEntries()
	if err != nil || len(entries) != 1+20+6 {
		t.Fatalf("%d journal entries (%v), want 27", len(entries), err)
	}
	err = b.dbh().View(func(tx *bolt.Tx) error {
		recs := records(tx)
		if n, _ := tx.Bucket(bucketBacklog).Cursor().First(); n == nil {
			t.Fatal("no record in the backlog: the walk would not cross the buckets")
		}
		var fwd, back []uint64
		cur := recs.Cursor()
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			if len(k) != 8 {
				t.Fatalf("forward: stopped at key %x", k)
			}
			fwd = append(fwd, keySeq(k))
		}
		for k, _ := cur.Last(); k != nil; k, _ = cur.Prev() {
			if len(k) != 8 {
				t.Fatalf("backward: stopped at key %x", k)
			}
			back = append(back, keySeq(k))
		}
		slices.Reverse(back)
		if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
			t.Fatalf("forward %v\nbackward %v\nwant %v", fwd, back, want)
		}
		for s := uint64(0); s <= 41; s++ {
			k, _ := cur.Seek(seqKey(s))
			i, _ := slices.BinarySearch(want, s)
			switch {
			case i == len(want) && k != nil:
				t.Fatalf("seek %d: at key %x, want the end", s, k)
			case i < len(want) && (len(k) != 8 || keySeq(k) != want[i]):
				t.Fatalf("seek %d: at key %x, want record %d", s, k, want[i])
			}
		}
		n, j := 0, 0
		kc := recs.keyCursor()
		for k, v := kc.First(); k != nil; k, v = kc.Next() {
			if journalEntry(k, v) {
				j++
			} else {
				n++
			}
		}
		if n != len(want) || j != len(entries) {
			t.Fatalf("key cursor: %d records and %d journal entries, want %d and %d", n, j, len(want), len(entries))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Builds of format 3 before keyspace.go created an empty "journal" bucket
// and never wrote it: such a file opens with its records and journal, and
// a salvage of it keeps them.
func TestEmptyJournalBucketOfEarlierBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buf.db")
	b := openTest(t, path, Options{})
	if _, err := b.AppendWithJournal(context.Background(), nil, Journal{Entry: []byte("e")}, readingRec("m", 0), readingRec("m", 1)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("journal")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	check := func(b *Buffer, what string) {
		t.Helper()
		recs, err := b.Read(0, 10)
		if err != nil || len(recs) != 2 {
			t.Fatalf("%s: %d records (%v), want 2", what, len(recs), err)
		}
	}
	b = openTest(t, path, Options{})
	defer func() { b.Close() }()
	check(b, "reopened")
	if e, err := b.JournalEntries(); err != nil || len(e) != 1 {
		t.Fatalf("reopened: journal %q (%v), want one entry", e, err)
	}
	b.Close()
	s, err := Salvaged(path, "", Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "salvaged")
}
