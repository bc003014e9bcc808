package filter

import (
	"time"

	"tidegate/reading"
)

// release finalises every held-back interval that ended at or before upTo.
func (m *meter) release(upTo int64, c *Config, out *Output) {
	n := 0
	for n < len(m.pending) && m.pending[n].t <= upTo {
		m.finish(&m.pending[n], c, out)
		n++
	}
	if n > 0 {
		k := copy(m.pending, m.pending[n:])
		clear(m.pending[k:])
		m.pending = m.pending[:k]
	}
}

// finish decides an interval and appends its reading to out.
func (m *meter) finish(it *item, c *Config, out *Output) {
	cons, back, ph := m.settle(it)
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
		f.Flags |= reading.FlagBackflow
		if it.t-m.lastBackT > int64(time.Hour) {
			out.Events = append(out.Events, reading.Event{Time: it.r.Received, Meter: m.id, Type: "backflow",
				Message: "real reverse flow: water pushed back into the main"})
		}
		m.lastBackT = it.t
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
	if m.leak.observe(it.start, it.t, cons, it.dF, m.res, &m.day, c) {
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
