package filter

import (
	"math"
	"strconv"
	"time"

	"tidegate/reading"
)

// release finalises every held-back interval that ended at or before upTo.
func (m *meter) release(upTo int64, c *Config, out *Output) {
	n := 0
	for n < len(m.pending) && m.pending[n].t <= upTo {
		m.finish(&m.pending[n], c, out, m.ending && n == len(m.pending)-1)
		n++
	}
	if n > 0 {
		k := copy(m.pending, m.pending[n:])
		clear(m.pending[k:])
		m.pending = m.pending[:k]
	}
}

const (
	backflowMin = 0.001 // m3: every backflow of a litre is an event
	// evidentSteps of the totaliser are more reverse than quantisation
	// leaves unpaired beside a surge.
	evidentSteps = 3
	// evidentShare of the surge reverse beside an episode is what the
	// ratio's error may leave unpaired over it.
	evidentShare = 0.05
	// backflowGap without reverse ends a backflow episode.
	backflowGap = int64(time.Hour)
)

// backflowShown reports whether the episode under way is a backflow to
// flag: backflowMin of reverse that nothing explained as a surge's. Beside
// a surge that may be its tail (the ratio's error, a totaliser step): it is
// flagged all the same, and its event says it came beside a surge.
func (m *meter) backflowShown() bool { return m.backVol >= backflowMin }

// closeBackflow reports the backflow episode under way as a backflow event
// with its volume once backflowGap has passed since its last reverse (or
// at the end of the data), if it reached backflowMin.
func (m *meter) closeBackflow(t int64, at time.Time, end bool, out *Output) {
	if m.backSent || !m.backflowShown() || (!end && t-m.lastBackT <= backflowGap) {
		return
	}
	m.backSent = true
	out.Events = append(out.Events, reading.Event{Time: at, Meter: m.id, Type: "backflow",
		Message: "real reverse flow: water pushed back into the main",
		Attrs: map[string]string{
			"volume_l":     strconv.FormatFloat(m.backVol*1000, 'f', 1, 64),
			"start":        time.Unix(0, m.backStart).UTC().Format(time.RFC3339),
			"end":          time.Unix(0, m.lastBackT).UTC().Format(time.RFC3339),
			"beside_surge": strconv.FormatBool(m.backBy),
			"evidence":     m.backEv.String(),
		}})
}

// finish decides an interval and appends its reading to out.
func (m *meter) finish(it *item, c *Config, out *Output, last bool) {
	cons, back, ph := m.settle(it)
	if last {
		cons += m.credit.fwd
		back += m.credit.rev
		m.credit = credit{}
	}
	f := &reading.Filtered{
		Start:       time.Unix(0, it.start).In(c.Location),
		Consumption: cons,
		Reverse:     back * it.ratio,
		Phantom:     it.pf + ph,
		Flags:       it.flags,
	}
	if f.Phantom > 0 {
		f.Flags |= reading.FlagSelfRotation
	}
	if f.Consumption > 0 {
		m.lastConsT = it.t
		m.noUse = false
	} else if it.t-m.lastConsT >= int64(c.NoUse) {
		f.Flags |= reading.FlagNoUse
		if !m.noUse {
			m.noUse = true
			out.Events = append(out.Events, reading.Event{Time: it.r.Received, Meter: m.id, Type: "no_use",
				Message: "no consumption for " + c.NoUse.String()})
		}
	}
	m.closeBackflow(it.t, it.r.Received, last, out)
	// Surge reverse of the last hour or so, and beside a backflow episode
	// while it runs: the ratio's error over it may leave a tail unpaired.
	m.surgeRev = m.surgeRev*math.Exp(-float64(it.t-m.surgeT)/float64(backflowGap)) + it.pf*it.ratio
	m.surgeT = it.t
	if it.t-m.lastBackT <= backflowGap {
		m.backSurge += it.pf * it.ratio
	}
	flowBack := 0.0
	if it.flowOK {
		flowBack = it.flowBack
	}
	if f.Reverse > 0 || flowBack > 0 {
		// Any reverse that nothing explains as a surge's is kept as
		// backflow, and an episode of backflowMin is flagged: water from
		// the home into the main is a contamination risk. Where the flow
		// readings measured more than the totals showed (a coarse
		// totaliser), the episode counts that.
		if it.t-m.lastBackT > backflowGap {
			m.backVol, m.backSurge, m.backStart, m.backSent, m.backEv = 0, m.surgeRev, it.start, false, evResidual
			m.backBy = false
		}
		m.backBy = m.backBy || it.pf > 0
		m.backVol += max(f.Reverse, flowBack)
		switch {
		case flowBack > 0:
			m.backEv = evFlow
		case it.dR-m.surgeReverseMax(it.dF, it.ratio) >= backflowMin || m.backVol >= evidentSteps*m.res+evidentShare*m.backSurge:
			m.backEv = max(m.backEv, evVolume)
		}
		m.lastBackT = it.t
		if m.backflowShown() {
			f.Flags |= reading.FlagBackflow
		}
	}
	if m.burst.observe(it.start, it.t, cons, c) {
		f.Flags |= reading.FlagBurst
		if m.burst.fresh {
			m.burst.fresh = false
			out.Events = append(out.Events, reading.Event{Time: it.r.Received, Meter: m.id, Type: "burst",
				Message: "flow above the burst threshold"})
		}
	}
	m.day.roll(it.t, m, c, out)
	leakCons, leakF := cons, it.dF
	if single(it.r) && it.r.Has&reading.HasFlow == 0 && f.Flags&reading.FlagSelfRotation != 0 {
		// One total and no flow reading: a night of surges leaves forward
		// residue in every hour, like a leak. Such intervals are no leak
		// evidence.
		leakCons, leakF = 0, 0
	}
	if m.leak.observe(it.start, it.t, leakCons, leakF, m.res, it.r.Flow, it.r.Has&reading.HasFlow != 0, &m.day, c) {
		out.Events = append(out.Events, reading.Event{Time: it.r.Received, Meter: m.id, Type: "leak",
			Message: "flow all night with no quiet hour"})
	}
	if m.leak.on {
		f.Flags |= reading.FlagLeak
	}
	m.day.add(it, f)
	r := it.r
	r.Filter = f
	out.Readings = append(out.Readings, r)
}
