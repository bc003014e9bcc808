package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/filter"
	"tidegate/reading"
)

// owner is the pipeline's one goroutine and everything only it touches.
type owner struct {
	p     *Pipeline
	filt  *filter.Filter
	out   filter.Output
	batch []reading.Record // waiting for the next commit, oldest first (a failed batch stays at its head)

	// The filter journal (journal.go): logq holds the polls for the next
	// commit's entry, logN counts the polls journalled since the last
	// checkpoint (on disk and in logq). oldLog are entries in the layout
	// before the buffer's journal, deleted by the next checkpoint.
	logq    []byte // the polls' encoding (pollcodec.go), framed by entry at the commit
	jc      pollCoder
	logPoll int
	logN    int
	oldLog  []string
	touched map[string]struct{} // meters pushed since the last checkpoint
	ckptNow bool                // the next commit is a checkpoint

	failedFor int       // records of batch that were there when an append failed
	failing   bool      // the last append failed
	lastLog   time.Time // of an append failure, so a dead disk logs once a minute, not once a second
	quiet     uint64    // failures since lastLog
}

// run is the owner's life: a panic in its own code (a bug) is logged with
// its stack and the loop starts again, with the batch it held; the buses
// never see a stopped pipeline.
func (o *owner) run() {
	defer close(o.p.done)
	for fails := 1; !o.loop(); fails = min(fails+1, 8) {
		select {
		case <-time.After(time.Duration(fails) * 100 * time.Millisecond):
		case <-o.p.closing:
		}
	}
}

// loop runs until Close has been handled (true) or a panic was recovered
// (false).
func (o *owner) loop() (closed bool) {
	p := o.p
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("%w: %v", ErrPanic, r)
			p.restarts.Add(1)
			p.setErr(err)
			p.log.WithField("stack", string(debug.Stack())).WithField("error", err.Error()).Error("pipeline owner panicked; restarting it")
			closed = false
		}
	}()
	after := p.opt.after
	if after == nil {
		after = func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		}
	}
	var stop func() bool
	var tick <-chan time.Time
	arm := func() {
		if tick == nil && o.waiting() {
			tick, stop = after(p.opt.Latency)
		}
	}
	disarm := func() {
		if tick != nil {
			stop()
		}
		tick = nil
	}
	// After a recovered panic the batch held is retried one latency on,
	// not only when the next record comes (a quiet bus may send none).
	arm()
	for {
		select {
		case rec := <-p.in:
			o.take(rec)
			if len(o.batch) >= p.opt.MaxBatch && !o.failing {
				disarm()
				o.flush()
			}
			arm()
		case fn := <-p.ctl:
			fn(o)
		case <-tick:
			tick = nil
			o.flush()
			arm() // what a failed append left, retried one latency later
		case <-p.closing:
			disarm()
			p.err = o.finish()
			return true
		}
	}
}

func (o *owner) waiting() bool { return len(o.batch) > 0 || o.logPoll > 0 || o.ckptNow }

// finish takes what is still queued (Close has been called: whatever a bus
// sends from now on is counted in Unqueued, not queued), releases what the
// filter holds and commits it all.
func (o *owner) finish() error {
	for {
		select {
		case rec := <-o.p.in:
			o.take(rec)
			continue
		default:
		}
		break
	}
	if o.filt != nil {
		out := o.filt.Flush()
		o.appendOutput(&out)
		for _, m := range o.filt.Meters() {
			o.touched[m] = struct{}{}
		}
		o.ckptNow = true
	}
	var err error
	for try := 0; try < 3 && o.waiting(); try++ {
		if try > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		err = o.flush()
	}
	if o.waiting() {
		n := uint64(len(o.batch))
		o.p.dropped.Add(n)
		o.p.pending.Store(0)
		o.p.log.WithFields(logrus.Fields{"records": n, "error": err}).Error("stopping: records not stored")
		return err
	}
	return nil
}

// take moves one record toward the next batch. Good current readings go
// through the filter, which may hold them back up to its window and
// releases them with their filtered values; failed polls, due-date values
// (Storage 1: the meter's own frozen total, never an interval of use),
// values read from the meter's memory and
// events go as they came. A billing read goes as it came and is also
// filtered, as an interval reading.
func (o *owner) take(rec reading.Record) {
	r := rec.Reading
	if r == nil || r.Quality != reading.QualityGood || r.Stored() || o.filt == nil {
		o.batch = append(o.batch, rec)
		o.p.pending.Store(uint64(len(o.batch)))
		return
	}
	// Status and tail show the poll at once; its filtered values follow
	// when the filter releases the interval.
	o.seen(rec)
	if rec.Kind == reading.KindBilling {
		o.batch = append(o.batch, rec)
	}
	o.out.Reset()
	o.filt.PushTo(&o.out, *r)
	o.appendOutput(&o.out)
	o.journal(r)
	o.p.pending.Store(uint64(len(o.batch)))
}

func (o *owner) appendOutput(out *filter.Output) {
	for i := range out.Readings {
		r := out.Readings[i]
		o.batch = append(o.batch, reading.Record{Kind: reading.KindReading, Reading: &r})
	}
	for i := range out.Days {
		d := out.Days[i]
		o.batch = append(o.batch, reading.Record{Kind: reading.KindSummary, Summary: &d})
	}
	for i := range out.Events {
		e := out.Events[i]
		o.batch = append(o.batch, reading.Record{Kind: reading.KindEvent, Event: &e})
	}
}

func (o *owner) seen(rec reading.Record) {
	if o.p.opt.Seen != nil {
		o.p.opt.Seen(rec)
	}
}

// flush commits the batch and, beside it, the filter's journal or a
// checkpoint of its states (journal.go) in one AppendWithJournal: after a
// crash the filter resumes exactly where its records end, neither
// re-emitting an interval under a new seq nor losing one. A failed append
// keeps everything for the next try.
func (o *owner) flush() error {
	if !o.waiting() {
		return nil
	}
	p := o.p
	states, jour, ckpt := o.sideState()
	// No deadline: an append that timed out might still be committed, and
	// retrying it would store its records twice under new seqs. A disk that
	// hangs holds the owner; the queue in front of it then holds the buses,
	// and Close gives up waiting at its own deadline.
	seqs, err := p.store.AppendWithJournal(context.Background(), states, jour, o.batch...)
	if errors.Is(err, buffer.ErrInvalidRecord) {
		o.dropInvalid()
		seqs, err = p.store.AppendWithJournal(context.Background(), states, jour, o.batch...)
	}
	if err != nil {
		o.failed(err)
		return err
	}
	if o.failing {
		p.retried.Add(uint64(o.failedFor))
		p.log.WithFields(logrus.Fields{"records": len(o.batch), "retried": o.failedFor}).Info("buffer append works again")
		o.failing, o.failedFor, o.quiet = false, 0, 0
	}
	p.failing.Store(false)
	p.commits.Add(1)
	p.stored.Add(uint64(len(o.batch)))
	for i := range o.batch {
		if i < len(seqs) {
			o.batch[i].Seq = seqs[i]
		}
		o.seen(o.batch[i])
	}
	clear(o.batch)
	o.batch = o.batch[:0]
	o.committed(ckpt)
	p.pending.Store(0)
	return nil
}

func (o *owner) failed(err error) {
	p := o.p
	p.appendErrs.Add(1)
	p.setErr(err)
	o.failing = true
	if n := len(o.batch) - p.opt.RetryMax; n > 0 {
		// Bounded: a disk that stays dead must not take the memory too.
		// The oldest go; the newest are the likeliest to still matter.
		p.dropped.Add(uint64(n))
		clear(o.batch[:n])
		o.batch = append(o.batch[:0], o.batch[n:]...)
		p.log.WithFields(logrus.Fields{"dropped": n, "held": len(o.batch)}).Error("buffer append failing: retry queue full, oldest records dropped")
	}
	o.failedFor = len(o.batch)
	p.pending.Store(uint64(len(o.batch)))
	o.quiet++
	if now := time.Now(); now.Sub(o.lastLog) >= time.Minute {
		p.log.WithFields(logrus.Fields{"records": len(o.batch), "failures": o.quiet, "error": err.Error()}).
			Error("buffer append failed; records kept in memory and retried")
		o.lastLog, o.quiet = now, 0
	}
}

// dropInvalid removes the records the buffer refuses to store at all
// (they would fail every retry), counting them.
func (o *owner) dropInvalid() {
	kept := o.batch[:0]
	for _, r := range o.batch {
		if err := buffer.Check(&r); err != nil {
			o.p.dropped.Add(1)
			o.p.log.WithFields(logrus.Fields{"kind": r.Kind.String(), "error": err.Error()}).Error("record cannot be stored; dropped")
			continue
		}
		kept = append(kept, r)
	}
	clear(o.batch[len(kept):])
	o.batch = kept
}
