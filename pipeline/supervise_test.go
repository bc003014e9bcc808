package pipeline

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/drivers"
	"tidegate/reading"
)

// panickyStore panics in its first appends: a bug in our own code, met
// while the buses keep delivering.
type panickyStore struct {
	Store
	left atomic.Int32
}

func (s *panickyStore) AppendWithJournal(ctx context.Context, st []buffer.State, j buffer.Journal, recs ...reading.Record) ([]uint64, error) {
	if s.left.Add(-1) >= 0 {
		panic("a bug in the store")
	}
	return s.Store.AppendWithJournal(ctx, st, j, recs...)
}

// A panic inside the owner is recovered, logged with its stack, counted,
// and the owner carries on with what it held: every record stored.
// (Before: the panic took the whole process down.)
func TestOwnerPanicRestarts(t *testing.T) {
	b, err := buffer.Open(t.TempDir()+"/b.db", buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := &panickyStore{Store: b}
	st.left.Store(2)
	l := logrus.New()
	var out strings.Builder
	l.SetOutput(&lockedWriter{w: &out})
	p := New(st, Options{Latency: 10 * time.Millisecond, Log: l})
	for i := range 50 {
		p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m", Received: time.Unix(int64(i+1), 0), Has: reading.HasForward, Forward: float64(i), Quality: reading.QualityError, Error: "timeout"}})
	}
	// Stored without another record: a quiet bus sends none. (Before, the
	// batch held at the panic waited for the next record or for Close.)
	deadline := time.Now().Add(20 * time.Second)
	for p.Stats().Stored < 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := p.Stats(); s.Stored != 50 {
		t.Fatalf("%d of 50 stored 20 s after the panics, before Close: %+v", s.Stored, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Stored != 50 || s.Restarts != 2 || s.State != "running" || !strings.Contains(s.LastError, "pipeline: panic") {
		t.Fatalf("stats %+v", s)
	}
	lw := l.Out.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if !strings.Contains(out.String(), "goroutine") {
		t.Error("no stack logged")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The pipeline is a bus's sink: drivers → pipeline with nothing between.
var _ drivers.Sink = (*Pipeline)(nil)
