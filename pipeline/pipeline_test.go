package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/filter"
	"tidegate/reading"
)

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func openBuf(t testing.TB, path string) *buffer.Buffer {
	t.Helper()
	b, err := buffer.Open(path, buffer.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t testing.TB, b *buffer.Buffer) []reading.Record {
	t.Helper()
	var out []reading.Record
	after := uint64(0)
	for {
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

// poll is meter m's i-th reading of a steady series, a minute apart.
func poll(m string, i int) reading.Reading {
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	return reading.Reading{Meter: m, Received: t0.Add(time.Duration(i) * time.Minute),
		Has: reading.HasForward | reading.HasReverse, Forward: 100 + 0.01*float64(i), Reverse: 1}
}

// A due-date value (Storage 1) goes to the buffer as it came, beside the
// current billing read; the filter sees only the current one. Fed to the
// filter, the older frozen total would read as the totals stepping back.
func TestDueDateBypassesFilter(t *testing.T) {
	buf := openBuf(t, filepath.Join(t.TempDir(), "buf.db"))
	defer buf.Close()
	p := New(buf, Options{Filter: filter.New(filter.Config{}), Log: quietLog()})
	t0 := time.Date(2026, 11, 23, 0, 5, 0, 0, time.UTC)
	cur := reading.Reading{Meter: "m2", Received: t0, Has: reading.HasForward, Forward: 12.5}
	due := reading.Reading{Meter: "m2", Received: t0, Has: reading.HasForward | reading.HasMeterTime, Forward: 11.0,
		MeterTime: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Storage: 1}
	later := cur
	later.Received, later.Forward = t0.Add(time.Hour), 12.6
	p.Ingest(reading.Record{Kind: reading.KindBilling, Reading: &cur})
	p.Ingest(reading.Record{Kind: reading.KindBilling, Reading: &due})
	p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &later})
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, buf)
	var dues, faults int
	for _, r := range recs {
		if r.Reading == nil {
			continue
		}
		if r.Reading.Storage == 1 {
			dues++
			if r.Kind != reading.KindBilling || r.Reading.Filter != nil || r.Reading.Forward != 11.0 {
				t.Errorf("due-date value stored as %v %+v", r.Kind, r.Reading)
			}
		}
		if f := r.Reading.Filter; f != nil && f.Flags&reading.FlagMeterFault != 0 {
			faults++
		}
	}
	if dues != 1 || faults != 0 {
		t.Fatalf("%d due-date values, %d meter_fault intervals in %d records; want 1 and 0", dues, faults, len(recs))
	}
}

// countingStore counts AppendWithState calls and the states they carry.
type countingStore struct {
	Store
	calls, full, journal, recs atomic.Int64
	dec                        pollCoder // the owner calls one at a time
}

func (c *countingStore) AppendWithJournal(ctx context.Context, st []buffer.State, j buffer.Journal, recs ...reading.Record) ([]uint64, error) {
	c.calls.Add(1)
	for _, s := range st {
		if !strings.HasPrefix(s.Key, journalPrefix) {
			c.full.Add(1)
		}
	}
	if j.Drop {
		c.dec.reset()
	}
	if len(j.Entry) > 0 {
		_ = c.dec.decode(j.Entry, func(reading.Reading) { c.journal.Add(1) })
	}
	c.recs.Add(int64(len(recs)))
	return c.Store.AppendWithJournal(ctx, st, j, recs...)
}

// What arrives within the latency is one commit carrying the polls the
// filter took (its journal), not one commit per reading with its meter's
// full state; full states are written at a checkpoint (here only Close's).
func TestBatchesWithinLatency(t *testing.T) {
	buf := openBuf(t, filepath.Join(t.TempDir(), "buf.db"))
	defer buf.Close()
	cs := &countingStore{Store: buf}
	// A latency no test machine reaches between two Ingest calls: the
	// batch is cut by MaxBatch and by Close, never by the clock.
	// Queue 1: the owner keeps pace with Ingest, so Close finds no backlog
	// to fold into its last commit.
	p := New(cs, Options{Filter: filter.New(filter.Config{}), Latency: time.Hour, MaxBatch: 100, Queue: 1, Log: quietLog()})
	const meters, polls = 5, 60
	for i := 0; i < polls; i++ {
		for m := 0; m < meters; m++ {
			r := poll(fmt.Sprint("m", m), i)
			p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	recs := readAll(t, buf)
	if st.Stored != uint64(len(recs)) || len(recs) < meters*(polls-1) {
		t.Fatalf("stored %d, buffer holds %d records; want at least %d", st.Stored, len(recs), meters*(polls-1))
	}
	// 295 records in batches of 100 (cut when MaxBatch is reached), plus the
	// final one with every state.
	if c := cs.calls.Load(); c > int64(len(recs))/100+2 {
		t.Errorf("%d commits for %d records; want batches of up to 100", c, len(recs))
	}
	// The last commit is Close's checkpoint: the polls since the commit
	// before are in the full states it writes, not journalled.
	if f, j := cs.full.Load(), cs.journal.Load(); f != meters || j < meters*(polls-40) || j > meters*polls {
		t.Errorf("%d full states and %d journal entries in %d commits; want %d (the checkpoint at Close) and about one entry a poll (%d)",
			f, j, cs.calls.Load(), meters, meters*polls)
	}
}

// The latency bounds the wait: a lone reading is committed within it.
func TestLatencyBoundsTheWait(t *testing.T) {
	buf := openBuf(t, filepath.Join(t.TempDir(), "buf.db"))
	defer buf.Close()
	got := make(chan reading.Record, 10)
	p := New(buf, Options{Latency: 20 * time.Millisecond, Log: quietLog(), Seen: func(r reading.Record) {
		if r.Seq != 0 {
			got <- r
		}
	}})
	defer p.Close(context.Background())
	r := poll("m", 0)
	p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
	select {
	case rec := <-got:
		if rec.Seq == 0 || rec.Reading.Meter != "m" {
			t.Fatalf("got %+v", rec)
		}
	case <-time.After(30 * time.Second): // the latency is 20 ms; a minute of load is not that
		t.Fatal("a lone reading was not committed")
	}
}

// faultyStore is a disk that is slow and fails every other append.
type faultyStore struct {
	Store
	delay time.Duration
	n     atomic.Int64
}

var errDisk = errors.New("injected disk failure")

func (f *faultyStore) AppendWithJournal(ctx context.Context, st []buffer.State, j buffer.Journal, recs ...reading.Record) ([]uint64, error) {
	time.Sleep(f.delay)
	if f.n.Add(1)%2 == 1 {
		return nil, errDisk
	}
	return f.Store.AppendWithJournal(ctx, st, j, recs...)
}

// A slow disk whose appends fail half the time, a full queue and several
// producers: nothing wedges (the old pipeline held its mutex while blocked on
// the full queue, and the failed append needed that mutex), Close returns,
// and every record handed over is stored exactly once, in order per
// producer, through the retries.
func TestSlowFailingDiskNoDeadlock(t *testing.T) {
	buf := openBuf(t, filepath.Join(t.TempDir(), "buf.db"))
	defer buf.Close()
	fs := &faultyStore{Store: buf, delay: 5 * time.Millisecond}
	p := New(fs, Options{Latency: time.Millisecond, Queue: 4, MaxBatch: 8, Log: quietLog()})
	const producers, each = 4, 200
	var wg sync.WaitGroup
	for g := 0; g < producers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := poll(fmt.Sprint("p", g), i)
				p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute): // 800 records, ~100 appends of 5 ms: seconds even under load
		t.Fatal("producers wedged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.AppendErrs == 0 || st.Retried == 0 || st.Dropped != 0 || st.Stored != producers*each {
		t.Fatalf("stats %+v; want append errors retried, none dropped, %d stored", st, producers*each)
	}
	recs := readAll(t, buf)
	if len(recs) != producers*each {
		t.Fatalf("buffer holds %d records, want %d", len(recs), producers*each)
	}
	next := map[string]time.Time{}
	for _, r := range recs {
		m := r.Reading.Meter
		if prev, ok := next[m]; ok && !r.Reading.Received.After(prev) {
			t.Fatalf("producer %s out of order at seq %d", m, r.Seq)
		}
		next[m] = r.Reading.Received
	}
}

// Records past the retry bound are dropped, oldest first, and counted.
func TestRetryQueueBounded(t *testing.T) {
	buf := openBuf(t, filepath.Join(t.TempDir(), "buf.db"))
	buf.Close() // every append fails: ErrClosed
	p := New(buf, Options{Latency: time.Millisecond, RetryMax: 10, Log: quietLog()})
	for i := 0; i < 50; i++ {
		r := poll("m", i)
		p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
	}
	err := p.Close(context.Background())
	if !errors.Is(err, buffer.ErrClosed) {
		t.Fatalf("Close: %v, want the store's error", err)
	}
	st := p.Stats()
	if st.Dropped != 50 || st.AppendErrs == 0 || st.Stored != 0 {
		t.Fatalf("stats %+v; want all 50 counted as dropped", st)
	}
}

// After Close, Ingest neither blocks nor panics; what it is handed is counted.
func TestIngestAfterClose(t *testing.T) {
	buf := openBuf(t, filepath.Join(t.TempDir(), "buf.db"))
	defer buf.Close()
	p := New(buf, Options{Log: quietLog()})
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := poll("m", 0)
	p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
	if st := p.Stats(); st.Unqueued != 1 {
		t.Fatalf("stats %+v", st)
	}
}
