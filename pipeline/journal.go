package pipeline

import (
	"encoding/binary"
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
// took since the last commit (~70 bytes each); every CheckpointEvery polls
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
//	journal entry            uvarint length + buffer.Encode of a reading record, per poll
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
	var polls [][]byte
	old, err := p.store.States(journalPrefix)
	if err != nil {
		p.log.WithError(err).Warn("filter journal (old layout) not read; the filter resumes from its last checkpoint")
	}
	for _, e := range old {
		o.oldLog = append(o.oldLog, e.Key)
		polls = append(polls, e.Value)
	}
	entries, err := p.store.JournalEntries()
	if err != nil {
		p.log.WithError(err).Warn("filter journal not read; the filter resumes from its last checkpoint")
	}
	for _, e := range entries {
		for len(e) > 0 {
			n, k := binary.Uvarint(e)
			if k <= 0 || uint64(len(e)-k) < n {
				p.log.Warn("filter journal entry truncated; the rest of it skipped")
				break
			}
			polls = append(polls, e[k:k+int(n)])
			e = e[k+int(n):]
		}
	}
	var discard filter.Output
	replayed := 0
	for _, v := range polls {
		rec, err := buffer.Decode(v)
		if err != nil || rec.Reading == nil {
			p.log.WithField("error", err).Warn("filter journal entry unreadable; skipped")
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
	o.logN = len(polls)
	if len(polls) > 0 || len(entries) > 0 {
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
	o.logq = binary.AppendUvarint(o.logq, uint64(len(v)))
	o.logq = append(o.logq, v...)
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
		return nil, buffer.Journal{Entry: o.logq}, false
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
	}
	o.logq = o.logq[:0]
	o.logPoll = 0
}
