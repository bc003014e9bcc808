package buffer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"tidegate/reading"
)

type boundLoad struct {
	meters, minutes int
	kindOf          map[uint64]reading.Kind
	meterMinute     map[uint64][2]int // seq → meter index, minute (readings only)
}

// fill appends what a small gateway produces: each minute a reading per
// meter, every 60 minutes a billing read per meter and a summary, every
// 45 minutes an event.
func fill(t *testing.T, b *Buffer, meters, minutes int) *boundLoad {
	t.Helper()
	l := &boundLoad{meters: meters, minutes: minutes, kindOf: map[uint64]reading.Kind{}, meterMinute: map[uint64][2]int{}}
	for m := 0; m < minutes; m++ {
		var recs []reading.Record
		for i := 0; i < meters; i++ {
			recs = append(recs, readingRec(fmt.Sprintf("m%02d", i), m))
		}
		if m%60 == 59 {
			for i := 0; i < meters; i++ {
				recs = append(recs, reading.Record{Kind: reading.KindBilling, Reading: sampleReading(fmt.Sprintf("m%02d", i), m)})
			}
			recs = append(recs, reading.Record{Kind: reading.KindSummary, Summary: &reading.DailySummary{Meter: "m00", Day: fmt.Sprint(m)}})
		}
		if m%45 == 44 {
			recs = append(recs, eventRec("leak"))
		}
		seqs, err := b.Append(context.Background(), recs...)
		if err != nil {
			t.Fatalf("minute %d: %v", m, err)
		}
		for i, s := range seqs {
			l.kindOf[s] = recs[i].Kind
			if i < meters {
				l.meterMinute[s] = [2]int{i, m}
			}
		}
	}
	return l
}

// heldAll reads every record held.
func heldAll(t *testing.T, b *Buffer) []reading.Record {
	t.Helper()
	var out []reading.Record
	for after := uint64(0); ; {
		recs, err := b.Read(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Seq
	}
}

func parseRanges(t *testing.T, s string) []Range {
	t.Helper()
	var out []Range
	for _, p := range strings.Split(s, ",") {
		from, to, found := strings.Cut(p, "-")
		f, err1 := strconv.ParseUint(from, 10, 64)
		tt, err2 := f, error(nil)
		if found {
			tt, err2 = strconv.ParseUint(to, 10, 64)
		}
		if err1 != nil || err2 != nil || tt < f {
			t.Fatalf("bad range %q in %q", p, s)
		}
		out = append(out, Range{f, tt})
	}
	return out
}

func TestBoundsEvictByPriorityThenAge(t *testing.T) {
	tests := []struct {
		name     string
		opt      Options
		thinning bool
	}{
		{"max records, thinning", Options{MaxRecords: 2000, ThinKeep: 4}, true},
		{"max bytes, thinning", Options{MaxBytes: 2000 * 104, ThinKeep: 3}, true}, // a reading is ~93 bytes with its checksum
		{"max records, no thinning", Options{MaxRecords: 2000, ThinKeep: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			b := openTest(t, path, tt.opt)
			defer b.Close()
			l := fill(t, b, 10, 720) // 7,200 readings: ~3.6× the bound
			s := b.Stats()
			held := heldAll(t, b)
			heldSeq := map[uint64]reading.Record{}
			var evictEvents []reading.Record
			for _, r := range held {
				heldSeq[r.Seq] = r
				if r.Kind == reading.KindEvent && r.Event.Type == "buffer_evicted" {
					evictEvents = append(evictEvents, r)
				}
			}
			if s.Depth != uint64(len(held)) {
				t.Fatalf("Depth %d, held %d", s.Depth, len(held))
			}
			if tt.opt.MaxRecords > 0 && s.Depth > uint64(tt.opt.MaxRecords)+uint64(len(evictEvents)) {
				t.Errorf("holding %d records, bound %d", s.Depth, tt.opt.MaxRecords)
			}
			if tt.opt.MaxBytes > 0 && s.LiveBytes > uint64(tt.opt.MaxBytes)+uint64(len(evictEvents))*4096 {
				t.Errorf("holding %d bytes, bound %d", s.LiveBytes, tt.opt.MaxBytes)
			}
			// What was appended and is not held was evicted (nothing was acked).
			evicted := map[uint64]bool{}
			for seq, k := range l.kindOf {
				if _, ok := heldSeq[seq]; !ok {
					evicted[seq] = true
					if k != reading.KindReading {
						t.Errorf("seq %d (%s) evicted while interval readings were left", seq, k)
					}
				}
			}
			if len(evicted) == 0 || s.Evicted != uint64(len(evicted)) {
				t.Fatalf("Stats().Evicted = %d, records missing = %d", s.Evicted, len(evicted))
			}
			// Every evicted seq is named in exactly one buffer_evicted range.
			named := map[uint64]bool{}
			for _, ev := range evictEvents {
				var n uint64
				for _, r := range parseRanges(t, ev.Event.Attrs["ranges"]) {
					for q := r.From; q <= r.To; q++ {
						if named[q] {
							t.Fatalf("seq %d named twice", q)
						}
						named[q] = true
						n++
					}
				}
				if ev.Event.Attrs["count"] != fmt.Sprint(n) {
					t.Errorf("event count %s, ranges hold %d", ev.Event.Attrs["count"], n)
				}
			}
			for q := range evicted {
				if !named[q] {
					t.Fatalf("seq %d evicted but named in no buffer_evicted event", q)
				}
			}
			if len(named) != len(evicted) {
				t.Fatalf("events name %d seqs, %d were evicted", len(named), len(evicted))
			}
			if u, _ := b.ReadUrgent(0, 1000); len(u) != int(s.Events) {
				t.Errorf("ReadUrgent gives %d events, Stats says %d", len(u), s.Events)
			}
			// Oldest first: the newest readings are all there...
			var readingsHeld []int // minutes of held readings
			for seq, mm := range l.meterMinute {
				if _, ok := heldSeq[seq]; ok {
					readingsHeld = append(readingsHeld, mm[1])
				} else if mm[1] >= l.minutes-60 {
					t.Errorf("reading of minute %d (of %d) evicted: newest should go last", mm[1], l.minutes)
				}
			}
			sort.Ints(readingsHeld)
			if tt.thinning {
				// ...and thinning leaves every meter its oldest reading and a
				// sparse history rather than a hole.
				for seq, mm := range l.meterMinute {
					if mm[1] == 0 {
						if _, ok := heldSeq[seq]; !ok {
							t.Errorf("meter %d lost its first reading: thinning should keep one in N", mm[0])
						}
					}
				}
				oldHalf := 0
				for _, m := range readingsHeld {
					if m < l.minutes/2 {
						oldHalf++
					}
				}
				if oldHalf == 0 || oldHalf >= len(readingsHeld)-oldHalf {
					t.Errorf("%d of %d held readings in the older half: want a thinner but present history", oldHalf, len(readingsHeld))
				}
			} else if len(readingsHeld) > 0 {
				// Without thinning, the held readings are the newest run.
				first := readingsHeld[0]
				if n := len(readingsHeld); n < (l.minutes-first-1)*l.meters {
					t.Errorf("no thinning: %d readings held from minute %d on, want contiguous", n, first)
				}
			}
			if len(s.EvictedRanges) == 0 {
				t.Error("Stats().EvictedRanges empty")
			}
		})
	}
}

// Reaching Options.MaxSize (the stand-in for a full disk) must not fail
// producers: records are evicted and the commit retried.
func TestMaxSizeHandledLikeDiskFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openTest(t, path, Options{MaxSize: 4 << 20, MaxRecords: 1 << 30, MaxBytes: 1 << 40})
	defer b.Close()
	ctx := context.Background()
	var lastErr error
	for i := 0; i < 600; i++ {
		recs := make([]reading.Record, 100)
		for j := range recs {
			recs[j] = readingRec(fmt.Sprintf("m%03d", j), i)
		}
		if _, err := b.Append(ctx, recs...); err != nil {
			lastErr = err
			t.Errorf("batch %d: %v", i, err)
			break
		}
	}
	s := b.Stats()
	if lastErr == nil && (s.FullHits == 0 || s.Evicted == 0) {
		t.Fatalf("60,000 readings in a 4 MiB cap: full hits %d, evicted %d; want both > 0", s.FullHits, s.Evicted)
	}
	if s.FileBytes > 4<<20+2*spaceStep {
		t.Errorf("file is %d bytes, cap 4 MiB plus eviction headroom", s.FileBytes)
	}
	found := false
	for _, r := range heldAll(t, b) {
		if r.Kind == reading.KindEvent && r.Event.Attrs["reason"] == "disk_full" {
			found = true
		}
	}
	if !found {
		t.Error("no buffer_evicted event with reason disk_full")
	}
	t.Logf("file %d bytes, held %d, evicted %d, full hits %d", s.FileBytes, s.Depth, s.Evicted, s.FullHits)
}

// TestDiskFull needs a small filesystem of its own: an 8 MiB tmpfs it
// mounts itself where it may (root, as in CI), or one named by
// TIDEGATE_SMALL_FS, e.g.
//
//	mount -t tmpfs -o size=8m tmpfs /tmp/enospc
//	TIDEGATE_SMALL_FS=/tmp/enospc go test -run TestDiskFull ./buffer/
//
// It fills the disk with no bound set and expects the buffer to keep taking
// readings by evicting old ones, never failing or blocking a producer for long.
func TestDiskFull(t *testing.T) {
	dir := os.Getenv("TIDEGATE_SMALL_FS")
	if dir == "" {
		dir = smallFS(t, 8<<20)
	}
	path := filepath.Join(dir, "buffer.db")
	os.Remove(path)
	defer os.Remove(path)
	b := openTest(t, path, Options{MaxSize: -1, MaxRecords: 1 << 30, MaxBytes: 1 << 40})
	defer b.Close()
	failed := 0
	for i := 0; i < 1000; i++ {
		recs := make([]reading.Record, 100)
		for j := range recs {
			recs[j] = readingRec(fmt.Sprintf("m%03d", j), i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := b.Append(ctx, recs...)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatalf("batch %d: %v, want nil or ErrFull", i, err)
			}
			failed++
		}
	}
	s := b.Stats()
	t.Logf("100,000 readings into %s: file %d bytes, held %d, evicted %d, out-of-space hits %d, batches refused %d",
		dir, s.FileBytes, s.Depth, s.Evicted, s.FullHits, failed)
	if s.Evicted == 0 {
		t.Errorf("disk never filled or nothing evicted: %+v", s)
	}
	// An 8 MiB disk holds ~70,000 readings: eviction must not empty it.
	if s.Readings < 20000 {
		t.Errorf("only %d readings held after eviction: evicting far too much", s.Readings)
	}
	if failed > 10 {
		t.Errorf("%d of 1000 batches refused: eviction should make room", failed)
	}
}
