package filter

import (
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
	backflowSteps = 3
	backflowMin   = 0.005 // m3
)

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
	if f.Reverse > 0 {
		// A step or two of reverse left over from a surge is not worth an
		// alarm: the flag and the event need an episode of real volume.
		if it.t-m.lastBackT > int64(time.Hour) {
			m.backVol = 0
		}
		before := m.backVol
		m.backVol += f.Reverse
		m.lastBackT = it.t
		if limit := max(backflowSteps*m.res, backflowMin); m.backVol >= limit {
			f.Flags |= reading.FlagBackflow
			if before < limit {
				out.Events = append(out.Events, reading.Event{Time: it.r.Received, Meter: m.id, Type: "backflow",
					Message: "real reverse flow: water pushed back into the main"})
			}
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
