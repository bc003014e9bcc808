//go:build linux

package buffer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"tidegate/reading"
)

// smallFS mounts a tmpfs of size bytes for the test (CI runs as root) and
// skips, saying why, where mounting is not permitted.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a %d-byte tmpfs (%v): run as root to test a small data partition", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// evictedSeqs is every seq the held buffer_evicted events name.
func evictedSeqs(t *testing.T, recs []reading.Record) map[uint64]bool {
	out := map[uint64]bool{}
	for _, r := range recs {
		if r.Event == nil || r.Event.Type != "buffer_evicted" {
			continue
		}
		for _, rg := range parseRanges(t, r.Event.Attrs["ranges"]) {
			for s := rg.From; s <= rg.To; s++ {
				out[s] = true
			}
		}
	}
	return out
}

// A data partition of a few MiB, broker down: the buffer holds about what
// fits, evicts only when a commit cannot fit and only as much as needed,
// reports every evicted seq, and stops evicting once the backlog drains.
// (Before: on 3 MiB, 2,975 of 3,245 records evicted with 3 MiB free; on 4
// MiB nothing stored at all.)
func TestSmallPartition(t *testing.T) {
	for _, mib := range []int{3, 4} {
		t.Run(fmt.Sprintf("%dMiB", mib), func(t *testing.T) {
			dir := smallFS(t, mib<<20)
			path := filepath.Join(dir, "buffer.db")
			b := openTest(t, path, Options{hotSpan: DefaultHotSpan}) // the production span: a move needs room too
			defer b.Close()
			batches, per := mib*2500, 5 // a second of a few meters each, past what fits
			failed, first := 0, uint64(0)
			for i := 0; i < batches; i++ {
				recs := make([]reading.Record, per)
				for j := range recs {
					recs[j] = readingRec(fmt.Sprintf("m%02d", j), i)
				}
				seqs, err := b.Append(context.Background(), recs...)
				if first == 0 && err == nil {
					first = seqs[0]
				}
				if err != nil {
					if failed == 0 {
						t.Logf("first refusal, batch %d: %v", i, err)
					}
					failed++
				}
			}
			s := b.Stats()
			var st syscall.Statfs_t
			syscall.Statfs(dir, &st)
			free := int64(st.Bavail) * int64(st.Bsize)
			t.Logf("%d MiB: %d appended, held %d (%d bytes encoded), file %d bytes, %d bytes free, evicted %d in %d rounds, %d batches refused",
				mib, batches*per, s.Depth, s.LiveBytes, s.FileBytes, free, s.Evicted, s.Evictions, failed)
			if failed > batches/100 {
				t.Errorf("%d of %d batches refused", failed, batches)
			}
			// bbolt needs about 100 bytes of file a held reading: what the
			// partition holds, less a reserve and bbolt's free pages.
			if fits := int64(mib<<20) / 100; int64(s.Depth) < fits/3 {
				t.Errorf("held %d records, the partition fits about %d", s.Depth, fits)
			}
			if free > int64(mib<<20)/2 && s.Evicted > 0 {
				t.Errorf("evicted %d records with %d bytes still free", s.Evicted, free)
			}
			recs := heldAll(t, b)
			reported := evictedSeqs(t, recs)
			held := map[uint64]bool{}
			for _, r := range recs {
				held[r.Seq] = true
			}
			var unreported []string
			for seq := first; seq <= s.LastSeq; seq++ {
				if !held[seq] && !reported[seq] && len(unreported) < 10 {
					unreported = append(unreported, fmt.Sprint(seq))
				}
			}
			if len(unreported) > 0 {
				t.Errorf("seqs missing without a buffer_evicted event naming them: %s ...", strings.Join(unreported, ","))
			}
			// The broker is back: everything is acknowledged, and new
			// readings are no longer evicted.
			if err := b.AckUpTo(s.LastSeq); err != nil {
				t.Fatal(err)
			}
			ev := b.Stats().Evicted
			for i := 0; i < 200; i++ {
				recs := make([]reading.Record, per)
				for j := range recs {
					recs[j] = readingRec(fmt.Sprintf("m%02d", j), batches+i)
				}
				seqs, err := b.Append(context.Background(), recs...)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Ack(seqs...); err != nil {
					t.Fatal(err)
				}
			}
			if s2 := b.Stats(); s2.Evicted != ev {
				t.Errorf("%d more records evicted after the backlog drained", s2.Evicted-ev)
			}
		})
	}
}

var _ = os.Remove

// When eviction has to take events, buffer_evicted reports among them, the
// gaps they reported are reported again by the round that evicted them.
func TestEvictedReportsCarriedForward(t *testing.T) {
	b := openTest(t, filepath.Join(t.TempDir(), "buffer.db"), Options{MaxRecords: 50, ThinKeep: 1})
	defer b.Close()
	first := uint64(0)
	for i := 0; i < 400; i++ {
		recs := []reading.Record{readingRec("m", i), eventRec("leak")}
		seqs, err := b.Append(context.Background(), recs...)
		if err != nil {
			t.Fatal(err)
		}
		if first == 0 {
			first = seqs[0]
		}
	}
	s := b.Stats()
	recs := heldAll(t, b)
	reported := evictedSeqs(t, recs)
	held := map[uint64]bool{}
	for _, r := range recs {
		held[r.Seq] = true
	}
	missing := 0
	for seq := first; seq <= s.LastSeq; seq++ {
		if !held[seq] {
			missing++
			if !reported[seq] {
				t.Fatalf("seq %d evicted and named by no held buffer_evicted event (%d evicted in %d rounds)", seq, s.Evicted, s.Evictions)
			}
		}
	}
	if missing == 0 {
		t.Fatal("nothing evicted")
	}
}
