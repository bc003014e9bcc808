package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// leafSeqs parses a bbolt file's raw pages (page header: id u64, flags
// u16, count u16, overflow u32; leaf elements: flags, pos, ksize, vsize,
// u32 each) and returns, per leaf page, the seqs of the stored records it
// holds. On a compacted file every leaf page is live.
func leafSeqs(t *testing.T, raw []byte) map[int][]uint64 {
	t.Helper()
	const ps = 4096
	out := map[int][]uint64{}
	for id := 2; (id+1)*ps <= len(raw); id++ {
		p := raw[id*ps : (id+1)*ps]
		if binary.LittleEndian.Uint64(p) != uint64(id) || binary.LittleEndian.Uint16(p[8:]) != 0x02 {
			continue
		}
		n := int(binary.LittleEndian.Uint16(p[10:]))
		for i := 0; i < n; i++ {
			e := 16 + 16*i
			if e+16 > ps {
				break
			}
			pos := int(binary.LittleEndian.Uint32(p[e+4:]))
			ks := int(binary.LittleEndian.Uint32(p[e+8:]))
			vs := int(binary.LittleEndian.Uint32(p[e+12:]))
			k := e + pos
			if ks != 8 || vs < 6 || k+ks+1 > ps || p[k+ks] != formatV3 {
				continue
			}
			out[id] = append(out[id], binary.BigEndian.Uint64(p[k:k+8]))
		}
	}
	return out
}

// makeCompacted leaves a cleanly closed buffer of n readings at path with
// no stale page in it, seq s holding readingRec(meterOf(s), ...).
func makeCompacted(t *testing.T, path string, n int) {
	t.Helper()
	makeFile(t, path, n, true)
	if err := Compact(path); err != nil {
		t.Fatal(err)
	}
}

// meterOf is the meter makeFile gave seq s (seqs from 1, 100 a batch).
func meterOf(s uint64) string { return fmt.Sprintf("m%03d", (s-1)%100) }

// Two leaf pages of a 20,000-record backlog overwritten under the running
// buffer, read and acknowledged as the uplink does: the reader never stops,
// every record outside the two pages is delivered under its own seq with
// its own values, each seq of the damaged pages is named in a
// buffer_evicted event (reason salvage), and appends go on above the old
// seqs. (Before: Read returned ErrCorrupt, the file was moved aside whole
// and 2 records were left of 20,000.)
func TestFileGoesBadWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	const n = 20000
	makeCompacted(t, path, n)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	leaves := leafSeqs(t, raw)
	var ids []int
	for id, seqs := range leaves {
		if seqs[0] > n/4 && seqs[0] < 3*n/4 {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	if len(ids) < 10 {
		t.Fatalf("only %d leaf pages found in the middle of the records", len(ids))
	}
	damaged := map[uint64]bool{}
	for _, id := range []int{ids[2], ids[len(ids)-3]} {
		for _, s := range leaves[id] {
			damaged[s] = true
		}
	}
	b := openTest(t, path, Options{})
	defer b.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xa5, 0x5a, 0x00, 0xff}, 4096/4)
	for _, id := range []int{ids[2], ids[len(ids)-3]} {
		f.WriteAt(junk, int64(id)*4096) // the mmap sees this at once
	}
	f.Close()

	delivered := map[uint64]bool{}
	var named []Range
	after := uint64(0)
	for errs := 0; ; {
		recs, err := b.Read(after, 500)
		if err != nil {
			if errs++; errs > 3 {
				t.Fatalf("Read keeps failing: %v", err)
			}
			continue
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			switch {
			case r.Reading != nil && r.Seq <= n:
				if r.Reading.Meter != meterOf(r.Seq) {
					t.Fatalf("seq %d carries meter %s's values", r.Seq, r.Reading.Meter)
				}
				delivered[r.Seq] = true
			case r.Event != nil && r.Event.Type == "buffer_evicted" && r.Event.Attrs["reason"] == "salvage":
				named = append(named, parseRanges(t, r.Event.Attrs["ranges"])...)
			}
		}
		after = recs[len(recs)-1].Seq
		if err := b.AckUpTo(after); err != nil {
			t.Fatalf("AckUpTo(%d): %v", after, err)
		}
	}
	readable := 0
	for s := uint64(1); s <= n; s++ {
		if !damaged[s] {
			readable++
		}
	}
	got := 0
	for s := range delivered {
		if !damaged[s] {
			got++
		}
	}
	t.Logf("%d of %d readable records delivered after %d records' pages were overwritten (%.2f%%)", got, readable, len(damaged), 100*float64(got)/float64(readable))
	if float64(got) < 0.99*float64(readable) {
		t.Fatalf("%d of %d readable records delivered, want >= 99%%", got, readable)
	}
	for s := uint64(1); s <= n; s++ {
		if delivered[s] {
			continue
		}
		in := false
		for _, r := range named {
			in = in || (r.From <= s && s <= r.To)
		}
		if !in {
			t.Fatalf("seq %d neither delivered nor named in a salvage range (%v)", s, named)
		}
	}
	s := b.Stats()
	if s.Recovered == nil || s.Recovered.Lost == 0 {
		t.Fatalf("no recovery reported: %+v", s.Recovered)
	}
	if _, err := os.Stat(s.Recovered.MovedTo); err != nil {
		t.Fatalf("old file not where the report says: %v", err)
	}
	seqs, err := b.Append(context.Background(), readingRec("m", 1))
	if err != nil || seqs[0] <= n {
		t.Fatalf("append after the salvage: %v %v", seqs, err)
	}
}

// A panic in our own code inside a transaction is a bug, not a damaged
// file: ErrPanic, logged with its stack, the transaction rolled back, the
// file kept and in use. (Before: ErrCorrupt, and the committer moved the
// whole file aside with every record in it.)
func TestPanicInTransactionIsABug(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")
	var logged bytes.Buffer
	lg := logrus.New()
	lg.SetOutput(&logged)
	lg.SetFormatter(&logrus.JSONFormatter{})
	b := openTest(t, path, Options{Logger: lg})
	defer b.Close()
	appendN(t, b, 1000)
	var nilMap map[string]int
	err := b.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketState).Put([]byte("half-done"), []byte{1}); err != nil {
			return err
		}
		nilMap["boom"]++ // a bug
		return nil
	})
	if !errors.Is(err, ErrPanic) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("panic in a transaction: %v, want ErrPanic and not ErrCorrupt", err)
	}
	if !strings.Contains(logged.String(), `"stack"`) || !strings.Contains(logged.String(), "TestPanicInTransactionIsABug") {
		t.Errorf("panic not logged with its stack: %s", logged.String())
	}
	// A read that panics in our code is the same.
	var rerr error
	func() {
		defer b.guard(&rerr)
		var recs []reading.Record
		_ = recs[3]
	}()
	if !errors.Is(rerr, ErrPanic) {
		t.Errorf("panic under guard: %v", rerr)
	}
	if v, _ := b.State("half-done"); v != nil {
		t.Errorf("the panicking transaction was not rolled back")
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) > 0 {
		t.Fatalf("file moved aside for a panic: %v", m)
	}
	if s := b.Stats(); s.Recovered != nil || s.Depth != 1000 {
		t.Fatalf("after the panic: %+v", s)
	}
	seqs, err := b.Append(context.Background(), readingRec("m", 1))
	if err != nil || seqs[0] != 1001 {
		t.Fatalf("append after the panic: %v %v", seqs, err)
	}
	if recs := heldAll(t, b); len(recs) != 1001 {
		t.Fatalf("%d records after the panic, want 1001", len(recs))
	}
}

// One key in a records page set to a later seq still in range (seq 500's
// key made 590's): the salvage keeps 590's own record under 590, delivers
// no reading under an id that is not its own, keeps every other record,
// and names 500 in a buffer_evicted range with lost counting it. (Before:
// 91 readings dropped, 90 of them undamaged, and lost: 0.)
func TestMovedKeyBoundToContent(t *testing.T) {
	for _, format := range []byte{formatV3, formatV2, formatV1} {
		t.Run(fmt.Sprintf("records of format %d", format), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			makeCompacted(t, path, 1000)
			if format != formatV3 {
				downgradeRecords(t, path, format)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Every copy of the key (a stale page may hold one too).
			k := append(binary.BigEndian.AppendUint64(nil, 500), format, byte(reading.KindReading))
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			found := 0
			for i := bytes.Index(raw, k); i >= 0; i = bytes.Index(raw[i+1:], k) + i + 1 {
				f.WriteAt(binary.BigEndian.AppendUint64(nil, 590), int64(i))
				if found++; !bytes.Contains(raw[i+1:], k) {
					break
				}
			}
			f.Close()
			if found == 0 {
				t.Fatal("seq 500's key not found in the file")
			}

			b := openTest(t, path, Options{})
			defer b.Close()
			if v, _ := b.dbh().Begin(false); v != nil {
				f := v.Bucket(bucketMeta).Get(keyFormat)
				v.Rollback()
				if len(f) != 1 || f[0] != fileFormat {
					t.Fatalf("file format %v after Open, want %d", f, fileFormat)
				}
			}
			var named []Range
			got := map[uint64]bool{}
			for _, r := range heldAll(t, b) {
				switch {
				case r.Reading != nil:
					if r.Reading.Meter != meterOf(r.Seq) {
						t.Fatalf("seq %d carries meter %s's values", r.Seq, r.Reading.Meter)
					}
					got[r.Seq] = true
				case r.Event.Type == "buffer_evicted" && r.Event.Attrs["reason"] == "salvage":
					named = append(named, parseRanges(t, r.Event.Attrs["ranges"])...)
				}
			}
			if len(got) != 999 || got[500] || !got[590] {
				t.Fatalf("%d readings kept (500: %v, 590: %v), want 999 without 500", len(got), got[500], got[590])
			}
			if len(named) != 1 || named[0] != (Range{500, 500}) {
				t.Fatalf("salvage ranges %v, want 500", named)
			}
			if s := b.Stats(); s.Recovered == nil || s.Recovered.Lost != 1 || s.Recovered.Salvaged != 999 {
				t.Fatalf("recovery %+v", s.Recovered)
			}
		})
	}
}

// downgradeRecords rewrites every record of a closed file as an older
// build stored it: version 2, its CRC over its own bytes only, or version
// 1, without a CRC.
func downgradeRecords(t *testing.T, path string, format byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketRecords, bucketBacklog} {
			bk := tx.Bucket(name)
			var kvs [][2][]byte
			bk.ForEach(func(k, v []byte) error {
				if len(k) == 8 && len(v) > 6 && v[0] == formatV3 {
					w := append([]byte(nil), v...)
					w[0] = format
					if format == formatV1 {
						w = w[:len(w)-4]
					} else {
						binary.LittleEndian.PutUint32(w[len(w)-4:], crc32c(w[:len(w)-4]))
					}
					kvs = append(kvs, [2][]byte{append([]byte(nil), k...), w})
				}
				return nil
			})
			for _, e := range kvs {
				if err := bk.Put(e[0], e[1]); err != nil {
					return err
				}
			}
		}
		// The file layout of the build before record format 3.
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte{2})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// leafKeys returns the file offsets of the stored records' keys in live
// leaf pages of a compacted file, with their seqs.
func leafKeys(raw []byte) map[int]uint64 {
	const ps = 4096
	out := map[int]uint64{}
	for id := 2; (id+1)*ps <= len(raw); id++ {
		p := raw[id*ps : (id+1)*ps]
		if binary.LittleEndian.Uint64(p) != uint64(id) || binary.LittleEndian.Uint16(p[8:]) != 0x02 {
			continue
		}
		n := int(binary.LittleEndian.Uint16(p[10:]))
		for i := 0; i < n && 16+16*i+16 <= ps; i++ {
			e := 16 + 16*i
			k := e + int(binary.LittleEndian.Uint32(p[e+4:]))
			if binary.LittleEndian.Uint32(p[e+8:]) == 8 && k+9 <= ps && p[k+8] == formatV3 {
				out[id*ps+k] = binary.BigEndian.Uint64(p[k : k+8])
			}
		}
	}
	return out
}

// Eight random bytes over a record's key in a records page, 24 trials: no
// reading comes out under an id that is not its own, and every seq is
// delivered, reported undecodable under its own seq, or named in a salvage
// range; lost counts the held records that were not kept. (Before: the
// salvage lost 92, 32, 1 and 1 readings in the trials that hit a key, each
// reported as lost: 0.)
func TestRottenKeysAccountedFor(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const n = 2000
	for trial := 0; trial < 24; trial++ {
		path := filepath.Join(t.TempDir(), "buffer.db")
		makeCompacted(t, path, n)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		keys := leafKeys(raw)
		offs := make([]int, 0, len(keys))
		for o := range keys {
			offs = append(offs, o)
		}
		sort.Ints(offs)
		pos := offs[rng.Intn(len(offs))]
		hit := keys[pos]
		junk := make([]byte, 8)
		rng.Read(junk)
		f, _ := os.OpenFile(path, os.O_RDWR, 0)
		f.WriteAt(junk, int64(pos))
		f.Close()

		b := openTest(t, path, Options{})
		seen := map[uint64]string{}
		var named []Range
		for _, r := range heldAll(t, b) {
			switch {
			case r.Reading != nil:
				if r.Reading.Meter != meterOf(r.Seq) || r.Seq > n {
					t.Fatalf("trial %d: seq %d carries meter %s's values", trial, r.Seq, r.Reading.Meter)
				}
				seen[r.Seq] = "reading"
			case r.Event.Type == "buffer_undecodable" && r.Seq <= n:
				seen[r.Seq] = "undecodable"
			case r.Event.Type == "buffer_evicted" && r.Event.Attrs["reason"] == "salvage":
				named = append(named, parseRanges(t, r.Event.Attrs["ranges"])...)
			}
		}
		s := b.Stats()
		b.Close()
		missing := 0
		for q := uint64(1); q <= n; q++ {
			if seen[q] != "" {
				continue
			}
			missing++
			in := false
			for _, r := range named {
				in = in || (r.From <= q && q <= r.To)
			}
			if !in {
				t.Fatalf("trial %d (key of seq %d hit): seq %d neither kept nor named (%v)", trial, hit, q, named)
			}
		}
		lost := uint64(0)
		if s.Recovered != nil {
			lost = s.Recovered.Lost
		}
		if lost != uint64(missing) {
			t.Fatalf("trial %d: %d seqs missing, lost says %d", trial, missing, lost)
		}
		t.Logf("trial %d: key of seq %d hit: %d missing, all named", trial, hit, missing)
	}
}

// The last record's key made larger than any seq assigned: the file still
// walks in order, so Open's key check removes the record; its own seq is
// named in a salvage range, not only the damaged key. (Before: a
// buffer_undecodable event named the key, and seq 1000 was silently gone.)
func TestDamagedLastKeyNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeCompacted(t, path, 1000)
	raw, _ := os.ReadFile(path)
	k := append(binary.BigEndian.AppendUint64(nil, 1000), formatV3, byte(reading.KindReading))
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	found := 0
	for i := bytes.Index(raw, k); i >= 0; {
		f.WriteAt([]byte{0x7f}, int64(i))
		found++
		j := bytes.Index(raw[i+1:], k)
		if j < 0 {
			break
		}
		i += j + 1
	}
	f.Close()
	if found == 0 {
		t.Fatal("key of seq 1000 not found")
	}
	b := openTest(t, path, Options{})
	defer b.Close()
	var named []Range
	readings := 0
	for _, r := range heldAll(t, b) {
		switch {
		case r.Reading != nil:
			readings++
		case r.Event.Type == "buffer_evicted" && r.Event.Attrs["reason"] == "salvage":
			named = append(named, parseRanges(t, r.Event.Attrs["ranges"])...)
		}
	}
	if readings != 999 || len(named) != 1 || named[0] != (Range{1000, 1000}) {
		t.Fatalf("%d readings, salvage ranges %v; want 999 and 1000", readings, named)
	}
}

// A file of the build before (layout 2, records of format 2, or 1 from the
// build before that) opens as it is: every record reads with its values,
// new ones are stored as format 3 beside them, and the file is marked 3.
func TestOlderRecordFormatsReadable(t *testing.T) {
	for _, format := range []byte{formatV2, formatV1} {
		path := filepath.Join(t.TempDir(), "buffer.db")
		makeCompacted(t, path, 1000)
		downgradeRecords(t, path, format)
		b := openTest(t, path, Options{})
		if s := b.Stats(); s.Recovered != nil || s.Depth != 1000 {
			t.Fatalf("format %d: %+v", format, s)
		}
		if _, err := b.Append(context.Background(), readingRec(meterOf(1001), 1)); err != nil {
			t.Fatal(err)
		}
		recs := heldAll(t, b)
		b.Close()
		if len(recs) != 1001 {
			t.Fatalf("format %d: %d records read", format, len(recs))
		}
		for _, r := range recs {
			if r.Reading == nil || r.Reading.Meter != meterOf(r.Seq) {
				t.Fatalf("format %d: seq %d read as %+v", format, r.Seq, r)
			}
		}
	}
}
