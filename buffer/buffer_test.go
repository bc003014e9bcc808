package buffer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/reading"
)

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func openTest(t testing.TB, path string, opt Options) *Buffer {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quietLogger()
	}
	if opt.Clock == nil {
		// Seqs from 1, so the tests can name them; TestFreshFileNumbersFromClock
		// checks the real clock.
		opt.Clock = func() time.Time { return time.UnixMicro(0) }
	}
	if opt.hotSpan == 0 {
		// Records move to the backlog every few seqs: every test meets
		// them in both buckets (backlog.go).
		opt.hotSpan = 3
	}
	b, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readingRec(meter string, i int) reading.Record {
	return reading.Record{Kind: reading.KindReading, Reading: sampleReading(meter, i)}
}

func eventRec(typ string) reading.Record {
	return reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: t0, Type: typ}}
}

func seqsOf(recs []reading.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func TestAppendReadAckReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openTest(t, path, Options{})
	ctx := context.Background()
	seqs, err := b.Append(ctx, readingRec("a", 1), readingRec("b", 1), eventRec("leak"), readingRec("a", 2))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[1 2 3 4]" {
		t.Fatalf("seqs = %v, want [1 2 3 4]", seqs)
	}
	select {
	case <-b.Notify():
	default:
		t.Error("no notification after an append")
	}
	got, err := b.Read(0, 10)
	if err != nil || fmt.Sprint(seqsOf(got)) != "[1 2 3 4]" {
		t.Fatalf("Read = %v, %v", seqsOf(got), err)
	}
	if !equalRecords(got[1], reading.Record{Seq: 2, Kind: reading.KindReading, Reading: sampleReading("b", 1)}) {
		t.Errorf("record 2 = %+v", got[1].Reading)
	}
	if u, _ := b.ReadUrgent(0, 10); fmt.Sprint(seqsOf(u)) != "[3]" {
		t.Errorf("ReadUrgent = %v, want [3]", seqsOf(u))
	}
	if got, _ := b.Read(2, 1); fmt.Sprint(seqsOf(got)) != "[3]" {
		t.Errorf("Read(2, 1) = %v, want [3]", seqsOf(got))
	}
	// The event goes out first; the cursor cannot pass the unacked 1 and 2.
	if err := b.Ack(3); err != nil {
		t.Fatal(err)
	}
	if c := b.Cursor(); c != 0 {
		t.Errorf("Cursor after Ack(3) = %d, want 0", c)
	}
	if err := b.AckUpTo(2); err != nil {
		t.Fatal(err)
	}
	if c := b.Cursor(); c != 3 {
		t.Errorf("Cursor after AckUpTo(2) = %d, want 3", c)
	}
	if err := b.Ack(99); !errors.Is(err, ErrUnknownSeq) {
		t.Errorf("Ack(99) = %v, want ErrUnknownSeq", err)
	}
	if err := b.AckUpTo(99); !errors.Is(err, ErrUnknownSeq) {
		t.Errorf("AckUpTo(99) = %v, want ErrUnknownSeq", err)
	}
	if err := b.Ack(3, 1); err != nil {
		t.Errorf("acking again: %v", err)
	}
	if err := b.PutState("filter/m1", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, reading.Record{Kind: reading.KindSummary}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("invalid record: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, readingRec("a", 3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}

	b = openTest(t, path, Options{})
	defer b.Close()
	s := b.Stats()
	if s.Unclean || s.Recovered != nil {
		t.Errorf("after Close: unclean %v recovered %v", s.Unclean, s.Recovered)
	}
	if s.Depth != 1 || s.LastSeq != 4 || s.Cursor != 3 || s.Appended != 4 || s.Acked != 3 || s.FirstSeq != 4 || s.Readings != 1 || s.Events != 0 {
		t.Errorf("stats after reopen: %+v", s)
	}
	if !s.Oldest.Equal(sampleReading("a", 2).Received) {
		t.Errorf("oldest = %v", s.Oldest)
	}
	if v, err := b.State("filter/m1"); err != nil || !bytes.Equal(v, []byte{1, 2, 3}) {
		t.Errorf("State = %v, %v", v, err)
	}
	if v, err := b.State("nope"); v != nil || err != nil {
		t.Errorf("absent State = %v, %v; want nil, nil", v, err)
	}
	if err := b.PutState("empty", []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.State("empty"); v == nil || len(v) != 0 || err != nil {
		t.Errorf("empty State = %#v, %v; want empty, not absent", v, err)
	}
	if err := b.PutState("empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.State("empty"); v != nil {
		t.Errorf("State after PutState(nil) = %#v, want deleted", v)
	}
	seqs, err = b.Append(ctx, readingRec("c", 1))
	if err != nil || seqs[0] != 5 {
		t.Errorf("after reopen, seqs = %v, %v; want [5]", seqs, err)
	}
	// Draining everything still leaves the numbering where it was.
	if err := b.AckUpTo(5); err != nil {
		t.Fatal(err)
	}
	if seqs, _ = b.Append(ctx, readingRec("c", 2)); seqs[0] != 6 {
		t.Errorf("after draining, seq = %v, want 6", seqs)
	}
	var out bytes.Buffer
	if err := b.Export(&out, 0, 0); err != nil {
		t.Fatal(err)
	}
	var line reading.RecordJSON
	if err := json.Unmarshal(out.Bytes(), &line); err != nil || line.Seq != 6 || line.Kind != "reading" || line.Meter != "c" {
		t.Errorf("export = %s (%v)", out.String(), err)
	}
}

func TestLockedByAnotherOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openTest(t, path, Options{})
	defer b.Close()
	start := time.Now()
	_, err := Open(path, Options{Timeout: 200 * time.Millisecond, Logger: quietLogger()})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v", d)
	}
	if err := Compact(path); !errors.Is(err, ErrLocked) {
		t.Errorf("Compact of an open file = %v, want ErrLocked", err)
	}
}

// Concurrent producers: every record gets exactly one sequence number, each
// call's numbers are consecutive, and the file holds what each call sent.
func TestConcurrentAppendGapFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openTest(t, path, Options{})
	defer b.Close()
	const producers, calls = 8, 50
	var mu sync.Mutex
	owner := map[uint64]string{}
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				n := 1 + (p+i)%5
				recs := make([]reading.Record, n)
				for j := range recs {
					recs[j] = readingRec(fmt.Sprintf("p%d-%d-%d", p, i, j), i)
				}
				seqs, err := b.Append(context.Background(), recs...)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j, s := range seqs {
					if j > 0 && s != seqs[j-1]+1 {
						t.Errorf("call's seqs not consecutive: %v", seqs)
					}
					if _, dup := owner[s]; dup {
						t.Errorf("seq %d assigned twice", s)
					}
					owner[s] = recs[j].Reading.Meter
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var after uint64
	n := 0
	for {
		got, err := b.Read(after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		for _, r := range got {
			n++
			if r.Seq != after+1 {
				t.Fatalf("gap: %d after %d", r.Seq, after)
			}
			if owner[r.Seq] != r.Reading.Meter {
				t.Fatalf("seq %d holds %q, Append returned it for %q", r.Seq, r.Reading.Meter, owner[r.Seq])
			}
			after = r.Seq
		}
	}
	if n != len(owner) || uint64(n) != b.Stats().Depth {
		t.Errorf("read %d records, appended %d, depth %d", n, len(owner), b.Stats().Depth)
	}
}

func TestAppendContextCanceled(t *testing.T) {
	b := openTest(t, filepath.Join(t.TempDir(), "buffer.db"), Options{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Append(ctx, readingRec("a", 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with canceled ctx = %v", err)
	}
}

// A record whose bytes were damaged must not stall the queue: it is handed
// out as an event saying so, under its own sequence number.
func TestUndecodableRecordReported(t *testing.T) {
	r := decodeOrReport(7, []byte{formatV1, byte(reading.KindReading), 0xff})
	if r.Seq != 7 || r.Kind != reading.KindEvent || r.Event.Type != "buffer_undecodable" || !strings.Contains(r.Event.Message, "7") {
		t.Errorf("got %+v %+v", r, r.Event)
	}
}
