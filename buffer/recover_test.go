package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"tidegate/reading"
)

// makeFile leaves a buffer of n readings at path, closed cleanly or not.
func makeFile(t *testing.T, path string, n int, clean bool) {
	t.Helper()
	b := openTest(t, path, Options{})
	for i := 0; i < n; i += 100 {
		recs := make([]reading.Record, 100)
		for j := range recs {
			recs[j] = readingRec(fmt.Sprintf("m%03d", j), i)
		}
		if _, err := b.Append(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !clean {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyClean, []byte{0}) })
		db.Close()
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string)
		inError string
	}{
		{"not a bbolt file", func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("tidegate"), 4096), 0o600)
		}, "invalid"},
		{"truncated by a broken SD card", func(t *testing.T, path string) {
			makeFile(t, path, 20000, true)
			fi, _ := os.Stat(path)
			os.Truncate(path, fi.Size()/3)
		}, "truncated"},
		{"both meta pages garbage", func(t *testing.T, path string) {
			makeFile(t, path, 1000, true)
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt(bytes.Repeat([]byte{0xa5}, 8192), 0)
			f.Close()
		}, ""},
		{"page zeroed, then a crash", func(t *testing.T, path string) {
			makeFile(t, path, 20000, false)
			// Wipe pages in the middle of the records tree (not in the
			// preallocated reserve past its end).
			db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			var used int64
			db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
			db.Close()
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt(make([]byte, 16*4096), used/2/4096*4096)
			f.Close()
		}, "Page expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "buffer.db")
			tt.damage(t, path)
			var logged bytes.Buffer
			lg := logrus.New()
			lg.SetOutput(&logged)
			lg.SetFormatter(&logrus.JSONFormatter{})

			if _, err := Open(path, Options{NoRecover: true, Logger: lg}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open with NoRecover = %v, want ErrCorrupt", err)
			}
			if err := Compact(path); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Compact of a corrupt file = %v, want ErrCorrupt", err)
			}
			b, err := Open(path, Options{Logger: lg})
			if err != nil {
				t.Fatalf("Open must recover, got %v", err)
			}
			defer b.Close()
			s := b.Stats()
			if s.Recovered == nil || !strings.Contains(s.Recovered.Reason, tt.inError) {
				t.Fatalf("Recovered = %+v, want a reason with %q", s.Recovered, tt.inError)
			}
			if _, err := os.Stat(s.Recovered.MovedTo); err != nil || !strings.HasPrefix(filepath.Base(s.Recovered.MovedTo), "buffer.db.corrupt-") {
				t.Errorf("moved-aside file %q: %v", s.Recovered.MovedTo, err)
			}
			if !strings.Contains(logged.String(), `"level":"error"`) || !strings.Contains(logged.String(), `"moved_to"`) {
				t.Errorf("not logged loudly with fields: %s", logged.String())
			}
			// The fresh buffer says what happened, numbered past anything the
			// lost file can have used, and works. What could be read of the
			// damaged file is kept before it (salvage.go).
			// Every seq the salvage could not keep is named in a
			// buffer_evicted event (reason salvage) after it.
			recs, _ := b.ReadUrgent(0, 100)
			if len(recs) < 1 || recs[0].Event == nil || recs[0].Event.Type != "buffer_recovered" ||
				(s.Recovered.Salvaged == 0 && recs[0].Seq < 1<<40) {
				t.Fatalf("events of the fresh buffer: %+v", recs)
			}
			var named uint64
			for _, r := range recs[1:] {
				if r.Event.Type != "buffer_evicted" || r.Event.Attrs["reason"] != "salvage" {
					t.Fatalf("event %+v after buffer_recovered", r.Event)
				}
				for _, rg := range parseRanges(t, r.Event.Attrs["ranges"]) {
					named += rg.To - rg.From + 1
				}
			}
			if s.Recovered.Salvaged > 0 {
				if s.Depth != s.Recovered.Salvaged+uint64(len(recs)) {
					t.Errorf("%d records held, %d salvaged, %d events", s.Depth, s.Recovered.Salvaged, len(recs))
				}
				if s.Recovered.Salvaged+named < 20000 || s.Recovered.Lost == 0 || s.Recovered.Lost > named {
					t.Errorf("%d salvaged, %d lost, %d named in ranges: not every seq accounted for", s.Recovered.Salvaged, s.Recovered.Lost, named)
				}
				t.Logf("%s: %d records salvaged, %d lost, %d seqs named", tt.name, s.Recovered.Salvaged, s.Recovered.Lost, named)
			}
			seqs, err := b.Append(context.Background(), readingRec("a", 1))
			if err != nil || seqs[0] != recs[len(recs)-1].Seq+1 {
				t.Errorf("append after recovery: %v %v", seqs, err)
			}
		})
	}
}

func TestUncleanButIntactFileKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeFile(t, path, 5000, false)
	b := openTest(t, path, Options{})
	defer b.Close()
	s := b.Stats()
	if !s.Unclean || s.Recovered != nil || s.Depth != 5000 || s.LastSeq != 5000 {
		t.Errorf("stats: %+v", s)
	}
}

func TestNewerFormatRefusedNotMoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeFile(t, path, 100, true)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte{fileFormat + 1}) })
	db.Close()
	if _, err := Open(path, Options{Logger: quietLogger()}); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("Open = %v, want ErrNewerFormat", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("file of a newer format must stay where it is: %v", err)
	}
}

func TestCompactShrinksAndKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeFile(t, path, 30000, true)
	b := openTest(t, path, Options{})
	if err := b.AckUpTo(29990); err != nil {
		t.Fatal(err)
	}
	if err := b.PutState("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	before := b.Stats()
	b.Close()
	if err := Compact(path); err != nil {
		t.Fatal(err)
	}
	b = openTest(t, path, Options{})
	defer b.Close()
	after := b.Stats()
	if after.FileBytes*10 > before.FileBytes {
		t.Errorf("compact: %d → %d bytes, want < 1/10", before.FileBytes, after.FileBytes)
	}
	if after.Depth != 10 || after.LastSeq != 30000 || after.Cursor != 29990 || after.Acked != 29990 || after.Unclean {
		t.Errorf("after compact: %+v", after)
	}
	if v, _ := b.State("k"); string(v) != "v" {
		t.Errorf("state after compact: %q", v)
	}
	if seqs, err := b.Append(context.Background(), readingRec("a", 1)); err != nil || seqs[0] != 30001 {
		t.Errorf("append after compact: %v %v", seqs, err)
	}
	t.Logf("compact: %d → %d bytes", before.FileBytes, after.FileBytes)
}

// A page that goes bad under a running buffer neither takes the daemon
// down with a bbolt panic nor stops the reader: the file is salvaged under
// it and the read goes on past the damage.
func TestPageLostWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeFile(t, path, 20000, true)
	b := openTest(t, path, Options{})
	defer b.Close()
	var used int64
	b.dbh().View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 16*4096), used/2/4096*4096) // the mmap sees this at once
	f.Close()
	var rerr error
	for after := uint64(0); rerr == nil; {
		var recs []reading.Record
		recs, rerr = b.Read(after, 1000)
		if len(recs) == 0 {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	if rerr != nil {
		t.Fatalf("reading across a zeroed page: %v, want the salvaged records", rerr)
	}
	if err := b.AckUpTo(20000); err != nil {
		t.Errorf("AckUpTo across a zeroed page: %v", err)
	}
	if s := b.Stats(); s.Recovered == nil || s.Recovered.Salvaged < 19000 {
		t.Errorf("after the damage: %+v", s.Recovered)
	}
}
