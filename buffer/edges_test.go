package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tidegate/reading"
)

func appendN(t *testing.T, b *Buffer, n int) []uint64 {
	t.Helper()
	var out []uint64
	for i := 0; i < n; i += 100 {
		recs := make([]reading.Record, min(100, n-i))
		for j := range recs {
			recs[j] = readingRec(fmt.Sprintf("m%03d", j), i+j)
		}
		seqs, err := b.Append(context.Background(), recs...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, seqs...)
	}
	return out
}

// One flipped byte in a key of a cleanly closed file (seq 5's high byte set
// to 0x7f) costs that record, is reported, and leaves the counters, acks
// and eviction sane. (Before: no report, the uplink's ack failed with a
// nil pointer dereference, the held-bytes counter wrapped and every commit
// evicted.)
func TestFlippedKeyByte(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeFile(t, path, 1000, true)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The key in its leaf: followed by its value's version and kind bytes.
	k := append(binary.BigEndian.AppendUint64(nil, 5), formatV3, byte(reading.KindReading))
	i := bytes.Index(raw, k)
	if i < 0 {
		t.Fatal("key of seq 5 not found in the file")
	}
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0x7f}, int64(i))
	f.Close()

	b := openTest(t, path, Options{})
	s := b.Stats()
	recs := heldAll(t, b)
	var reports int
	for _, r := range recs {
		if r.Event != nil && r.Event.Type == "buffer_undecodable" && r.Event.Attrs["reason"] == "corrupt key" {
			reports++ // found by the key check at open
		}
		if r.Event != nil && r.Event.Type == "buffer_recovered" && r.Event.Attrs["salvaged"] == "999" {
			reports++ // bbolt refused the file: its readable records salvaged
		}
	}
	if reports != 1 || s.Readings != 999 || s.LiveBytes > 1000*200 || s.LastSeq < 1000 {
		t.Fatalf("%d corrupt-key reports; stats %+v", reports, s)
	}
	for _, r := range recs {
		if r.Seq > s.LastSeq {
			t.Fatalf("record with seq %d beyond the last assigned %d", r.Seq, s.LastSeq)
		}
	}
	if err := b.AckUpTo(s.LastSeq); err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 500)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTest(t, path, Options{})
	defer b.Close()
	s = b.Stats()
	if s.Depth != 500 || s.Evicted != 0 || s.LiveBytes > 500*200 {
		t.Fatalf("after acking and 500 more: %+v", s)
	}
}

// A fresh file numbers from the clock, so seqs never repeat for a gateway
// whose file was lost, emptied or replaced. A file found empty says so.
// (Before: seqs restarted at 1, and an emptied file was taken as new without
// a word.)
func TestFreshFileNumbersFromClock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")
	clock := func() time.Time { return time.Now() }
	before := uint64(time.Now().UnixMicro())
	b := openTest(t, path, Options{Clock: clock})
	first := appendN(t, b, 10)
	b.Close()
	if first[0] <= before {
		t.Fatalf("fresh file's first seq %d, the clock said %d", first[0], before)
	}
	// Deleted (a reinstalled box, a replaced card): the next file is above.
	os.Remove(path)
	b = openTest(t, path, Options{Clock: clock})
	second := appendN(t, b, 10)
	b.Close()
	if second[0] <= first[len(first)-1] {
		t.Fatalf("seqs repeat after the file was deleted: %d after %d", second[0], first[len(first)-1])
	}
	// Emptied: numbered afresh, and reported.
	os.Truncate(path, 0)
	b = openTest(t, path, Options{Clock: clock})
	defer b.Close()
	s := b.Stats()
	recs := heldAll(t, b)
	if s.Recovered == nil || len(recs) != 1 || recs[0].Event.Type != "buffer_recovered" || recs[0].Seq <= second[len(second)-1] {
		t.Fatalf("empty file: recovered %+v, records %+v", s.Recovered, recs)
	}
}

// Damage to the 16-byte header of meta page 0 while page 1 is intact: bbolt
// can use page 1, so nothing is moved aside and every record is kept.
// (Before: the consistency check after a crash failed on page 0 and all
// records were moved aside.)
func TestFirstMetaHeaderDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeFile(t, path, 400, false) // after a crash: the consistency check runs
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt(make([]byte, 16), 0)
	f.Close()
	b := openTest(t, path, Options{})
	defer b.Close()
	if s := b.Stats(); s.Recovered != nil || s.Readings != 400 {
		t.Fatalf("stats %+v", s)
	}
}

// The file cap a 32-bit box can map, whatever the settings: bbolt maps up
// to 1 GiB in powers of two, so past 512 MiB it would ask for 1 GiB. (Before:
// the default 2×512 MiB+64 MiB cap; commits failed past what could be mapped.)
func TestMaxSizeFits32Bit(t *testing.T) {
	for _, o := range []Options{{}, {MaxSize: -1}, {MaxSize: 4 << 30}, {MaxBytes: 1 << 30}} {
		d := o.withDefaultsFor(32)
		if d.MaxSize <= 0 || d.MaxSize > MaxMap32 || d.MaxBytes >= d.MaxSize && o.MaxBytes == 0 {
			t.Errorf("%+v on 32 bits: MaxSize %d, MaxBytes %d", o, d.MaxSize, d.MaxBytes)
		}
		if d.MaxSize > 1<<29 {
			t.Errorf("MaxSize %d needs a 1 GiB mapping", d.MaxSize)
		}
	}
	if d := (Options{}).withDefaultsFor(64); d.MaxSize != 2*DefaultMaxBytes+64<<20 {
		t.Errorf("64-bit default MaxSize %d", d.MaxSize)
	}
}
