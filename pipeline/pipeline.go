// Package pipeline is the filter → buffer leg of tidegate's data flow, with
// one owner: a single goroutine takes what the buses deliver, runs it
// through the self-rotation filter and hands the buffer batches, each one
// AppendWithJournal carrying the batch's records and the filter states of the
// meters it touched. Nothing else touches the filter or the queue, so no
// lock is held across a send, there is never a second consumer, and a
// meter's filter state is on disk exactly as far as its records are.
//
// Why batches: every buffer commit fsyncs and rewrites the pages it touches
// (a records leaf, the state pages, the root, a meta page). One commit per
// reading wrote ~27 KB of flash per 91-byte record; one commit per
// Options.Latency shares those pages among all that arrived meanwhile.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/filter"
	"tidegate/reading"
)

// Store is the buffer as the pipeline uses it.
type Store interface {
	AppendWithJournal(ctx context.Context, states []buffer.State, j buffer.Journal, recs ...reading.Record) ([]uint64, error)
	State(key string) ([]byte, error)
	States(prefix string) ([]buffer.State, error)
	JournalEntries() ([][]byte, error)
}

// Defaults of Options.
const (
	DefaultLatency    = time.Second
	DefaultMaxBatch   = 2048
	DefaultQueue      = 4096
	DefaultRetryMax   = 100_000
	DefaultCheckpoint = 8192
)

// ErrClosed is returned by Close when called twice, and counts records that
// arrive after Close began.
var ErrClosed = errors.New("pipeline is closed")

// ErrNotDrained is returned by Close when ctx ended before the owner had
// stored what it held (a disk that hangs).
var ErrNotDrained = errors.New("pipeline not drained")

// ErrPanic wraps a panic recovered in the owner: a bug, logged with its
// stack; the owner starts again with what it held.
var ErrPanic = errors.New("pipeline: panic")

// StateKey is where a meter's filter state lives in the buffer's side state.
func StateKey(meter string) string { return "filter/" + meter }

// Options configure New. The zero value is the production default with the
// filter off.
type Options struct {
	// Filter is the self-rotation filter, nil when off. The pipeline owns
	// it from New on: nobody else may call it.
	Filter *filter.Filter
	// Meters whose filter state is restored from the store at New.
	Meters []string
	// Latency bounds how long a record waits for its batch's commit.
	// Zero means DefaultLatency.
	Latency time.Duration
	// MaxBatch commits early once this many records are waiting.
	MaxBatch int
	// Queue is how many records the buses may hand over before Ingest
	// waits for the owner.
	Queue int
	// RetryMax bounds the records held in memory while appends fail; past
	// it the oldest are dropped and counted in Stats.Dropped.
	RetryMax int
	// CheckpointEvery is how many polls the filter journal holds before the
	// touched meters' full states are written and the journal emptied.
	// Zero means DefaultCheckpoint.
	CheckpointEvery int
	// Seen, if set, is called by the owner with each good poll as it
	// arrives (before the filter holds it back) and with each record once it
	// is stored (Seq set). It must not block for long.
	Seen func(reading.Record)
	Log  logrus.FieldLogger

	// after, for benchmarks: the commit timer (nil: time.NewTimer), so a
	// benchmark can run the owner's own batching on a virtual clock.
	after func(time.Duration) (c <-chan time.Time, stop func() bool)
	// fullStates, for benchmarks: every commit carries the full states of
	// the meters it touched, as the pipeline did before the journal.
	fullStates bool
}

// Stats are the pipeline's counters, over its life.
type Stats struct {
	Ingested   uint64 // records the buses handed over
	Unqueued   uint64 // handed over after Close began: not stored
	Stored     uint64 // records the buffer took
	Commits    uint64 // AppendWithJournal calls that succeeded
	AppendErrs uint64 // AppendWithJournal calls that failed (their records were kept for retry)
	Retried    uint64 // records stored by a retry after a failed append
	Dropped    uint64 // records given up because the retry queue was full
	Pending    uint64 // records held in memory now, waiting for a commit
	Restarts   uint64 // panics the owner recovered from
	// State is "running", or "restarting" while appends fail (they are
	// retried, the records held) or just after a recovered panic;
	// LastError says why.
	State     string
	LastError string
}

// Pipeline is one running owner. Its methods are safe for concurrent use.
type Pipeline struct {
	opt   Options
	store Store
	log   logrus.FieldLogger

	in      chan reading.Record
	ctl     chan func(*owner)
	closing chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	err     error // set by the owner before done closes

	ingested, unqueued, stored, commits, appendErrs, retried, dropped, pending, restarts atomic.Uint64
	failing                                                                              atomic.Bool
	lastErr                                                                              atomic.Pointer[string]
}

func (p *Pipeline) setErr(err error) {
	s := err.Error()
	p.lastErr.Store(&s)
	p.failing.Store(true)
}

// New restores the filter states of opt.Meters from store and starts the
// owner.
func New(store Store, opt Options) *Pipeline {
	if opt.Latency <= 0 {
		opt.Latency = DefaultLatency
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = DefaultMaxBatch
	}
	if opt.Queue <= 0 {
		opt.Queue = DefaultQueue
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = DefaultRetryMax
	}
	if opt.CheckpointEvery <= 0 {
		opt.CheckpointEvery = DefaultCheckpoint
	}
	if opt.Log == nil {
		opt.Log = logrus.StandardLogger()
	}
	p := &Pipeline{opt: opt, store: store, log: opt.Log,
		in: make(chan reading.Record, opt.Queue), ctl: make(chan func(*owner)),
		closing: make(chan struct{}), done: make(chan struct{})}
	o := &owner{p: p, filt: opt.Filter, touched: map[string]struct{}{}}
	if o.filt != nil {
		o.restore()
	}
	go o.run()
	return p
}

// Ingest hands over one record. It waits while the queue is full (the disk
// is slower than the buses), never past Close.
func (p *Pipeline) Ingest(rec reading.Record) {
	if p.closed.Load() {
		p.unqueued.Add(1)
		return
	}
	select {
	case p.in <- rec:
		p.ingested.Add(1)
	case <-p.closing:
		p.unqueued.Add(1)
	}
}

// Reading and Event make the pipeline a bus's sink (drivers.Sink): a
// reading goes from the drivers to the pipeline with nothing between.
func (p *Pipeline) Reading(r reading.Reading, kind reading.Kind) {
	p.Ingest(reading.Record{Kind: kind, Reading: &r})
}

// Event is the other half of drivers.Sink.
func (p *Pipeline) Event(e reading.Event) {
	p.Ingest(reading.Record{Kind: reading.KindEvent, Event: &e})
}

// SetFilter replaces the filter's settings, keeping what each meter has
// learned and holds. It runs on the owner, between two records.
func (p *Pipeline) SetFilter(cfg filter.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	fn := func(o *owner) {
		if o.filt == nil {
			errc <- fmt.Errorf("the filter is off")
			return
		}
		nf := filter.New(cfg)
		for _, m := range o.filt.Meters() {
			if st, err := o.filt.State(m); err == nil && st != nil {
				_ = nf.SetState(m, st)
			}
		}
		o.filt = nf
		// The journal replays onto full states under the settings they
		// were pushed with only if those are the states on disk.
		o.ckptNow = true
		errc <- nil
	}
	select {
	case p.ctl <- fn:
	case <-p.done:
		return ErrClosed
	}
	return <-errc
}

// Stats reads the counters.
func (p *Pipeline) Stats() Stats {
	s := Stats{Ingested: p.ingested.Load(), Unqueued: p.unqueued.Load(), Stored: p.stored.Load(),
		Commits: p.commits.Load(), AppendErrs: p.appendErrs.Load(), Retried: p.retried.Load(),
		Dropped: p.dropped.Load(), Pending: p.pending.Load(), Restarts: p.restarts.Load(), State: "running"}
	if p.failing.Load() {
		s.State = "restarting"
	}
	if e := p.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Alive says whether the owner turns: it runs a no-op between two records
// within ctx (a watchdog asks). An owner stuck in an append that hangs
// does not answer.
func (p *Pipeline) Alive(ctx context.Context) bool {
	done := make(chan struct{})
	select {
	case p.ctl <- func(*owner) { close(done) }:
	case <-ctx.Done():
		return false
	case <-p.done:
		return false
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close stops taking records, stores what was handed over, flushes the
// filter (every interval it holds, and every meter's state) and returns when
// the last batch is committed or ctx ends. The store stays open: its owner
// closes it after.
func (p *Pipeline) Close(ctx context.Context) error {
	if p.closed.Swap(true) {
		<-p.done
		return ErrClosed
	}
	close(p.closing)
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotDrained, ctx.Err())
	}
}

// Done is closed when the owner has finished.
func (p *Pipeline) Done() <-chan struct{} { return p.done }
