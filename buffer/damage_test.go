package buffer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"tidegate/reading"
)

// writeRecords leaves a cleanly closed buffer of n readings and returns
// what each seq holds.
func writeRecords(t *testing.T, path string, n int) map[uint64]reading.Record {
	t.Helper()
	b := openTest(t, path, Options{})
	want := map[uint64]reading.Record{}
	for i := 0; i < n; i += 100 {
		recs := make([]reading.Record, 100)
		for j := range recs {
			recs[j] = readingRec(fmt.Sprintf("m%03d", j), i+j)
		}
		seqs, err := b.Append(context.Background(), recs...)
		if err != nil {
			t.Fatal(err)
		}
		for k, s := range seqs {
			want[s] = recs[k]
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// Rotten bytes in a records page: 8 random bytes over record values, 20
// trials. A damaged record comes out as buffer_undecodable with its seq,
// never as a reading with other values; the rest come out as written.
// (Before the checksum: 2 of 6 trials sent a reading with wrong values.)
func TestRottenBytesNeverSentAsValues(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 20; trial++ {
		path := filepath.Join(t.TempDir(), "buffer.db")
		want := writeRecords(t, path, 2000)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pos := findValue(raw, rng)
		junk := make([]byte, 8)
		rng.Read(junk)
		f, _ := os.OpenFile(path, os.O_RDWR, 0)
		f.WriteAt(junk, int64(pos))
		f.Close()

		b := openTest(t, path, Options{})
		var got []reading.Record
		for after := uint64(0); ; {
			recs, err := b.Read(after, 1000)
			if err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			if len(recs) == 0 {
				break
			}
			got = append(got, recs...)
			after = recs[len(recs)-1].Seq
		}
		b.Close()
		bad := 0
		for _, r := range got {
			w, ok := want[r.Seq]
			if r.Event != nil && r.Event.Type == "buffer_undecodable" {
				bad++
				if r.Event.Attrs["seq"] != fmt.Sprint(r.Seq) {
					t.Errorf("trial %d: undecodable record reported without its seq: %+v", trial, r.Event)
				}
				continue
			}
			if !ok {
				continue // the buffer's own events
			}
			if !reflect.DeepEqual(r.Reading, w.Reading) {
				t.Fatalf("trial %d: seq %d came out as %+v, was written as %+v", trial, r.Seq, r.Reading, w.Reading)
			}
		}
		t.Logf("trial %d: %d bytes at %d: %d of %d records undecodable", trial, len(junk), pos, bad, len(got))
	}
}

// findValue picks an offset inside a stored record's value: a few bytes
// after a meter id, where its floats are.
func findValue(raw []byte, rng *rand.Rand) int {
	for {
		from := 8192 + rng.Intn(len(raw)-16384)
		i := bytes.Index(raw[from:], []byte("m0"))
		if i >= 0 {
			return from + i + 6
		}
	}
}
