package buffer

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// An id is refused while its window lasts, also after the file is closed and
// opened again; once its time has passed it is dropped and may be used again.
func TestRememberSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.db")
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	b, err := Open(path, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Remember("r1", now.Add(15*time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := b.Remember("r1", now.Add(15*time.Minute), now.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use: %v, want ErrReplayed", err)
	}
	if err := b.Remember("r2", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(path, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Remember("r1", now.Add(15*time.Minute), now.Add(2*time.Minute)); !errors.Is(err, ErrReplayed) {
		t.Fatalf("after reopen: %v, want ErrReplayed", err)
	}
	if err := b.Remember("r2", now.Add(20*time.Minute), now.Add(2*time.Minute)); err != nil {
		t.Fatalf("r2 after its window: %v", err)
	}
	if err := b.Remember("", now, now); err == nil {
		t.Fatal("empty id accepted")
	}
	n := 0
	if err := b.dbh().View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketReplay).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d ids kept, want 2 (r1, r2)", n)
	}
	// r1's window over: pruned by the next use.
	if err := b.Remember("r3", now.Add(40*time.Minute), now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	_ = b.dbh().View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketReplay).Stats().KeyN; return nil })
	if n != 1 {
		t.Fatalf("%d ids kept after the windows passed, want 1", n)
	}
}
