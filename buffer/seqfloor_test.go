package buffer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"tidegate/reading"
)

var clock1970 = func() time.Time { return time.UnixMicro(0) }

// A box whose clock says 1970 appends under SIGKILL, then loses its buffer
// file (deleted; or damaged beyond reading, which is moved aside): the
// fresh file's every seq is above every seq the killed process was told
// about. The floor file is what remembers, written far less often than
// records are committed. (Before: a fresh file numbered from the clock,
// 1 at 1970, and the receiver dropped its records as duplicates.)
func TestFreshFileAfterLossAt1970(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")
	var told uint64
	for round := 0; round < 3; round++ {
		lines, stderr := runAndKill(t, path, round, time.Duration(300+200*round)*time.Millisecond, crash1970Env+"=1")
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) == 3 && f[0] == "A" {
				s, _ := strconv.ParseUint(f[1], 10, 64)
				told = max(told, s)
			}
			if len(f) >= 1 && f[0] == "E" {
				t.Fatalf("child failed: %s\n%s", l, stderr)
			}
		}
	}
	if told < 2000 {
		t.Fatalf("the child was told only up to seq %d: too few to cross the floor's steps", told)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	b := openTest(t, path, Options{Clock: clock1970})
	seqs := appendN(t, b, 10)
	b.Close()
	t.Logf("after seqs up to %d (SIGKILLed 3 times), the fresh file at 1970 starts at %d", told, seqs[0])
	if seqs[0] <= told {
		t.Fatalf("fresh file at 1970 numbers from %d, the lost one had handed out %d", seqs[0], told)
	}
	// Emptied (a full disk at creation) is the same; so is a file that
	// cannot be read at all.
	os.Truncate(path, 0)
	b = openTest(t, path, Options{Clock: clock1970})
	again := appendN(t, b, 10)
	b.Close()
	if again[0] <= seqs[len(seqs)-1] {
		t.Fatalf("emptied file at 1970 numbers from %d after %d", again[0], seqs[len(seqs)-1])
	}
}

// The floor costs one small write per FloorStep seqs, not one per commit.
func TestFloorWrittenRarely(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openTest(t, path, Options{Clock: clock1970, floorStep: 1000})
	defer b.Close()
	for i := 0; i < 100; i++ {
		appendN(t, b, 100)
	}
	s := b.Stats()
	if s.FloorWrites == 0 || s.FloorWrites > 10000/1000+2 {
		t.Fatalf("%d floor writes for 10,000 records in 100 commits at a step of 1,000", s.FloorWrites)
	}
	if f := readFloor(path); f < s.LastSeq {
		t.Fatalf("floor file says %d, seqs reached %d", f, s.LastSeq)
	}
}

// EnsureAbove renumbers the records not yet acknowledged above the seq the
// uplink says was published, in order, each bound to its new seq, and
// raises the seqs to come; the floor file keeps it.
func TestEnsureAbove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openTest(t, path, Options{Clock: clock1970})
	old := appendN(t, b, 250)
	if _, err := b.Append(context.Background(), eventRec("e")); err != nil {
		t.Fatal(err)
	}
	if err := b.AckUpTo(old[49]); err != nil {
		t.Fatal(err)
	}
	const published = 1_000_000
	if err := b.EnsureAbove(published); err != nil {
		t.Fatal(err)
	}
	recs := heldAll(t, b)
	if len(recs) != 201 {
		t.Fatalf("%d records held after renumbering, want 201", len(recs))
	}
	for i, r := range recs {
		if r.Seq != published+1+uint64(i) {
			t.Fatalf("record %d has seq %d, want %d", i, r.Seq, published+1+uint64(i))
		}
		if k := 50 + i; i < 200 && (r.Reading == nil || r.Reading.Meter != fmt.Sprintf("m%03d", k%100) || r.Reading.Forward != sampleReading("", k).Forward) {
			t.Fatalf("record %d changed: %+v", i, r)
		}
	}
	if ev, _ := b.ReadUrgent(0, 10); len(ev) != 1 || ev[0].Seq != published+201 || ev[0].Event.Type != "e" {
		t.Fatalf("urgent index after renumbering: %+v", ev)
	}
	if b.Cursor() != published {
		t.Fatalf("cursor %d", b.Cursor())
	}
	// Nothing at or below: nothing moves.
	if err := b.EnsureAbove(500); err != nil {
		t.Fatal(err)
	}
	if r := heldAll(t, b); r[0].Seq != published+1 {
		t.Fatalf("EnsureAbove below the held records moved them to %d", r[0].Seq)
	}
	if err := b.AckUpTo(published + 201); err != nil {
		t.Fatal(err)
	}
	// Nothing held: the seqs to come are raised.
	if err := b.EnsureAbove(2 * published); err != nil {
		t.Fatal(err)
	}
	seqs, err := b.Append(context.Background(), readingRec("m", 1))
	if err != nil || seqs[0] != 2*published+1 {
		t.Fatalf("append after EnsureAbove(%d): %v %v", 2*published, seqs, err)
	}
	b.Close()
	os.Remove(path)
	b = openTest(t, path, Options{Clock: clock1970})
	defer b.Close()
	if seqs, _ := b.Append(context.Background(), readingRec("m", 2)); seqs[0] <= 2*published+1 {
		t.Fatalf("fresh file after EnsureAbove numbers from %d", seqs[0])
	}
}

// The build's date is a floor of the clock: stamped, or Go's VCS time.
func TestClockFloor(t *testing.T) {
	want := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	if got := clockFloor("2026-12-07T04:00:00Z", nil); !got.Equal(want) {
		t.Errorf("stamped: %v", got)
	}
	info := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.time", Value: "2026-12-07T04:00:00Z"}}}
	if got := clockFloor("", info); !got.Equal(want) {
		t.Errorf("vcs.time: %v", got)
	}
	if got := clockFloor("", nil); !got.IsZero() {
		t.Errorf("nothing known: %v", got)
	}
}

var _ = reading.KindReading

// A write that fails for a while (here the floor file's, its path taken
// by a directory): the commits that need it fail with ErrIO, classified
// with errors.Is, reads and acks go on, and once the write works again the
// next Append succeeds with nothing lost: one failure never poisons the
// next call. (The uplink's supervisor retries on ErrIO.)
func TestTransientWriteErrorNotSticky(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openTest(t, path, Options{Clock: clock1970, floorStep: 100})
	defer b.Close()
	appendN(t, b, 500)
	fp := floorPath(path)
	if err := os.Remove(fp); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(fp, 0o700); err != nil {
		t.Fatal(err)
	}
	var failed error
	for i := 0; i < 300 && failed == nil; i++ {
		_, failed = b.Append(context.Background(), readingRec("m", i))
	}
	if !errors.Is(failed, ErrIO) || errors.Is(failed, ErrCorrupt) || errors.Is(failed, ErrFull) {
		t.Fatalf("Append whose floor cannot be written: %v, want ErrIO", failed)
	}
	if _, err := b.Append(context.Background(), readingRec("m", 1)); !errors.Is(err, ErrIO) {
		t.Fatalf("Append again while the write fails: %v", err)
	}
	recs, err := b.Read(0, 10000)
	if err != nil {
		t.Fatalf("Read while writes fail: %v", err)
	}
	held := len(recs)
	os.Remove(fp)
	seqs, err := b.Append(context.Background(), readingRec("m", 2))
	if err != nil || seqs[0] != recs[held-1].Seq+1 {
		t.Fatalf("Append once the write works again: %v %v (last held %d)", seqs, err, recs[held-1].Seq)
	}
	if err := b.AckUpTo(seqs[0]); err != nil {
		t.Fatalf("AckUpTo once the write works again: %v", err)
	}
	if s := b.Stats(); s.Depth != 0 || s.Recovered != nil || readFloor(path) <= seqs[0] {
		t.Fatalf("after the write came back: depth %d, recovered %+v, floor %d", s.Depth, s.Recovered, readFloor(path))
	}
}
