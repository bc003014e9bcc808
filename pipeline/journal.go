package pipeline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/filter"
	"tidegate/reading"
)

// The filter journal. A meter's full filter state is large when it polls
// often: it holds every interval of its window (15 minutes of 1.5 s polls
// are ~57 KB). Writing the states of the meters a batch touched with every
// batch would rewrite all of them each second. Instead each commit carries,
// beside its records, the polls the filter took since the last commit
// (~70 bytes each, appended at the end of the state bucket, so they share
// one page); every CheckpointEvery polls a commit carries the full states of
// the meters touched since the last checkpoint and deletes the journal.
// At New the states are restored and the journal replayed through the
// filter, its output discarded: the records it released were committed in
// the same transactions as the polls. After a crash the filter is then
// exactly as far as its records, as if each commit had carried the states.
//
//	filter/<meter>           full state (filter.State), as of the last checkpoint
//	filterlog/<16 hex digits> one poll, buffer.Encode of a reading record
const journalPrefix = "filterlog/"

func journalKey(n uint64) string { return fmt.Sprintf("%s%016x", journalPrefix, n) }

// restore loads the states of the configured meters and replays the journal.
func (o *owner) restore() {
	p := o.p
	want := map[string]bool{}
	for _, m := range p.opt.Meters {
		want[m] = true
		st, err := p.store.State(StateKey(m))
		if err != nil || st == nil {
			continue
		}
		if err := o.filt.SetState(m, st); err != nil {
			p.log.WithFields(logrus.Fields{"meter": m, "error": err}).Warn("filter state not restored; learning afresh")
		}
	}
	log, err := p.store.States(journalPrefix)
	if err != nil {
		p.log.WithError(err).Warn("filter journal not read; the filter resumes from its last checkpoint")
		return
	}
	var discard filter.Output
	replayed := 0
	for i, e := range log {
		n, err := strconv.ParseUint(strings.TrimPrefix(e.Key, journalPrefix), 16, 64)
		if err != nil {
			continue
		}
		if i == 0 {
			o.logFirst = n
		}
		o.logNext = n + 1
		rec, err := buffer.Decode(e.Value)
		if err != nil || rec.Reading == nil {
			p.log.WithFields(logrus.Fields{"entry": e.Key, "error": err}).Warn("filter journal entry unreadable; skipped")
			continue
		}
		if len(want) > 0 && !want[rec.Reading.Meter] {
			continue
		}
		discard.Reset()
		o.filt.PushTo(&discard, *rec.Reading)
		o.touched[rec.Reading.Meter] = struct{}{}
		replayed++
	}
	o.logDone = o.logNext
	if len(log) > 0 {
		// Start the next run from full states again.
		o.ckptNow = true
		p.log.WithFields(logrus.Fields{"polls": replayed, "meters": len(o.touched)}).Info("filter journal replayed")
	}
}

// journal notes a poll the filter took, for the next commit.
func (o *owner) journal(r *reading.Reading) {
	x := *r
	x.Raw = nil // the filter never looks at the frame
	v, err := buffer.Encode(&reading.Record{Kind: reading.KindReading, Reading: &x})
	if err != nil {
		o.p.log.WithFields(logrus.Fields{"meter": r.Meter, "error": err}).Warn("poll not journalled")
		return
	}
	o.logq = append(o.logq, buffer.State{Key: journalKey(o.logNext), Value: v})
	o.logNext++
	o.touched[r.Meter] = struct{}{}
}

// sideState is what the next commit writes beside its records: the new
// journal entries, or at a checkpoint the touched meters' full states and
// the journal's deletion. ckpt reports which.
func (o *owner) sideState() (states []buffer.State, ckpt bool) {
	if o.filt == nil {
		return nil, false
	}
	if !o.ckptNow && !o.p.opt.fullStates && o.logNext-o.logFirst < uint64(o.p.opt.CheckpointEvery) {
		return o.logq, false
	}
	meters := make([]string, 0, len(o.touched))
	for m := range o.touched {
		meters = append(meters, m)
	}
	sort.Strings(meters)
	for _, m := range meters {
		st, err := o.filt.State(m)
		if err != nil || st == nil {
			o.p.log.WithFields(logrus.Fields{"meter": m, "error": err}).Warn("filter state not saved")
			continue
		}
		states = append(states, buffer.State{Key: StateKey(m), Value: st})
	}
	for n := o.logFirst; n < o.logDone; n++ {
		states = append(states, buffer.State{Key: journalKey(n)})
	}
	return states, true
}

// committed advances the journal after a commit that carried sideState.
func (o *owner) committed(ckpt bool) {
	if ckpt {
		o.logFirst = o.logNext
		clear(o.touched)
		o.ckptNow = false
	}
	o.logDone = o.logNext
	clear(o.logq)
	o.logq = o.logq[:0]
}
