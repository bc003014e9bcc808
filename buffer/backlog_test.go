package buffer

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// A broker outage of hours, committed as the pipeline does (five records
// and a journal entry a commit, nothing acknowledged): the tree a commit
// appends to stays at two levels, so a commit rewrites four pages (its
// leaf, the branch, the top-level bucket page, a meta page) whatever the
// backlog. In one bucket the tree is three levels deep past ~8,000
// records, a page more every commit.
func TestBacklogKeepsCommitsShallow(t *testing.T) {
	const commits = 2400 // 12,000 records
	run := func(span int) (pages float64, levels, backlog int, n int) {
		b := openTest(t, filepath.Join(t.TempDir(), "buf.db"), Options{hotSpan: span})
		defer b.Close()
		ctx := context.Background()
		entry := make([]byte, 100)
		step := func(i int) {
			recs := make([]reading.Record, 5)
			for j := range recs {
				recs[j] = readingRec("m", 5*i+j)
			}
			if _, err := b.AppendWithJournal(ctx, nil, Journal{Entry: entry, Drop: i%1600 == 0}, recs...); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < commits-400; i++ {
			step(i)
		}
		p0, err := b.Pages()
		if err != nil {
			t.Fatal(err)
		}
		for i := commits - 400; i < commits; i++ {
			step(i)
		}
		p1, err := b.Pages()
		if err != nil {
			t.Fatal(err)
		}
		recs, err := b.Read(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if i > 0 && r.Seq != recs[i-1].Seq+1 {
				t.Fatalf("seq %d after %d", r.Seq, recs[i-1].Seq)
			}
		}
		return float64(p1.Writes-p0.Writes) / float64(p1.Commits-p0.Commits), p1.Depth, p1.BacklogDepth, len(recs)
	}
	pages, levels, backlog, n := run(DefaultHotSpan)
	onePages, oneLevels, _, oneN := run(math.MaxInt32)
	t.Logf("%d records held: %.2f pages a commit, appended to a tree of %d levels (backlog %d); one bucket: %.2f pages, %d levels",
		n, pages, levels, backlog, onePages, oneLevels)
	if n != 5*commits || oneN != n {
		t.Fatalf("%d and %d records held, want %d", n, oneN, 5*commits)
	}
	if levels > 2 || pages > 4.5 {
		t.Fatalf("with the backlog: %.2f pages a commit, a tree of %d levels; want at most 4.5 and 2", pages, levels)
	}
	if oneLevels < 3 || onePages < pages+0.7 {
		t.Fatalf("one bucket: %.2f pages a commit at %d levels; the backlog should save about a page (it wrote %.2f)", onePages, oneLevels, pages)
	}
}

// A file of format 1 (every record in "records", no backlog bucket) opens
// with every record, is marked format 2, and its records move to the
// backlog with the first commit past the span.
func TestFormat1FileUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buf.db")
	b := openTest(t, path, Options{hotSpan: DefaultHotSpan})
	for i := 0; i < 20; i++ {
		if _, err := b.Append(context.Background(), readingRec("m", 3*i), readingRec("m", 3*i+1), readingRec("m", 3*i+2)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBacklog).Stats().KeyN != 0 {
			t.Error("records in the backlog before the span")
		}
		if err := tx.DeleteBucket(bucketBacklog); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte{1})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b = openTest(t, path, Options{hotSpan: 10})
	if recs, err := b.Read(0, 1000); err != nil || len(recs) != 60 {
		t.Fatalf("format 1 file: %d records read (%v), want 60", len(recs), err)
	}
	if _, err := b.Append(context.Background(), readingRec("m", 60)); err != nil {
		t.Fatal(err)
	}
	recs, err := b.Read(0, 1000)
	if err != nil || len(recs) != 61 {
		t.Fatalf("%d records read (%v), want 61", len(recs), err)
	}
	for i, r := range recs {
		if r.Reading.Forward != sampleReading("m", i).Forward {
			t.Fatalf("record %d: %+v", i, r.Reading)
		}
	}
	b.Close()
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyFormat); len(v) != 1 || v[0] != fileFormat {
			t.Errorf("format %v after the upgrade, want %d", v, fileFormat)
		}
		if n := tx.Bucket(bucketBacklog).Stats().KeyN; n != 60 {
			t.Errorf("%d records moved to the backlog, want the 60 old ones", n)
		}
		return nil
	})
}
