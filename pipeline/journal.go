package pipeline

import (
	"sort"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/filter"
	"tidegate/reading"
)

// The filter journal. A meter's full filter state is large when it polls
// often: it holds every interval of its window (15 minutes of 1.5 s polls
// are ~57 KB). Writing the states of the meters a batch touched with every
// batch would rewrite all of them each second. Instead each commit carries,
// beside its records, one buffer journal entry with the polls the filter
// took since the last commit (~12 bytes each, pollcodec.go); every CheckpointEvery polls
// a commit carries the full states of the meters touched since the last
// checkpoint and drops the journal. The buffer keeps the journal in the
// records' own leaf (buffer/journal.go), so an entry costs no page of its
// own: in the state bucket it cost two 4 KiB pages a commit.
// At New the states are restored and the journal replayed through the
// filter, its output discarded: the records it released were committed in
// the same transactions as the polls. After a crash the filter is then
// exactly as far as its records, as if each commit had carried the states.
//
//	state filter/<meter>    full state (filter.State), as of the last checkpoint
//	journal entry            the commit's polls, each coded against its meter's
//	                         previous one (pollcodec.go); before, uvarint length +
//	                         buffer.Encode of a reading record, per poll: still read
//	state filterlog/<hex>    one poll, the layout before the buffer's journal:
//	                         replayed first, deleted by the next checkpoint
const journalPrefix = "filterlog/"

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
	var discard filter.Output
	replayed, polls := 0, 0
	push := func(r reading.Reading) {
		polls++
		if len(want) > 0 && !want[r.Meter] {
			return
		}
		discard.Reset()
		o.filt.PushTo(&discard, r)
		o.touched[r.Meter] = struct{}{}
		replayed++
	}
	old, err := p.store.States(journalPrefix)
	if err != nil {
		p.log.WithError(err).Warn("filter journal (old layout) not read; the filter resumes from its last checkpoint")
	}
	for _, e := range old {
		o.oldLog = append(o.oldLog, e.Key)
		rec, err := buffer.Decode(e.Value)
		if err != nil || rec.Reading == nil {
			p.log.WithField("error", err).Warn("filter journal entry unreadable; skipped")
			continue
		}
		push(*rec.Reading)
	}
	entries, err := p.store.JournalEntries()
	if err != nil {
		p.log.WithError(err).Warn("filter journal not read; the filter resumes from its last checkpoint")
	}
	var dec pollCoder
	for i, e := range entries {
		if err := dec.decode(e, push); err != nil {
			// Each poll is coded against the one before: past a bad
			// entry nothing decodes reliably.
			p.log.WithFields(logrus.Fields{"entry": i, "entries": len(entries), "error": err}).
				Warn("filter journal entry unreadable; the filter resumes from the polls before it")
			break
		}
	}
	o.logN = polls
	if polls > 0 || len(entries) > 0 || len(old) > 0 {
		// Start the next run from full states again.
		o.ckptNow = true
		p.log.WithFields(logrus.Fields{"polls": replayed, "meters": len(o.touched)}).Info("filter journal replayed")
	}
}

// journal notes a poll the filter took, for the next commit.
func (o *owner) journal(r *reading.Reading) {
	x := *r
	x.Raw = nil // the filter never looks at the frame
	q, err := o.jc.append(o.logq, &x)
	if err != nil {
		o.p.log.WithFields(logrus.Fields{"meter": r.Meter, "error": err}).Warn("poll not journalled")
		return
	}
	o.logq = q
	o.logPoll++
	o.logN++
	o.touched[r.Meter] = struct{}{}
}

// sideState is what the next commit writes beside its records: a journal
// entry with the new polls, or at a checkpoint the touched meters' full
// states and the journal's deletion. ckpt reports which.
func (o *owner) sideState() (states []buffer.State, j buffer.Journal, ckpt bool) {
	if o.filt == nil {
		return nil, j, false
	}
	if !o.ckptNow && !o.p.opt.fullStates && o.logN < o.p.opt.CheckpointEvery {
		if len(o.logq) == 0 {
			return nil, j, false
		}
		return nil, buffer.Journal{Entry: entry(o.logq)}, false
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
	for _, k := range o.oldLog {
		states = append(states, buffer.State{Key: k})
	}
	return states, buffer.Journal{Drop: true}, true
}

// committed advances the journal after a commit that carried sideState.
func (o *owner) committed(ckpt bool) {
	if ckpt {
		o.logN = 0
		o.oldLog = nil
		clear(o.touched)
		o.ckptNow = false
		o.jc.reset() // the next entry starts the journal afresh
	}
	o.logq = o.logq[:0]
	o.logPoll = 0
}
