package samples

import (
	"context"
	"time"

	"tidegate/simulator/water"
)

// Row is one poll of one meter: what the meter showed, and the truth of the
// interval since its previous poll (zero on a meter's first row).
type Row struct {
	Time    time.Time
	Meter   string
	Forward float64 // registered totals, m3
	Reverse float64
	Flow    float64 // registered instantaneous flow, m3/h, signed
	Truth   IntervalTruth
}

// IntervalTruth is the ground truth of one interval, m3.
type IntervalTruth struct {
	RealUse        float64 // forward the meter registers for real use alone
	RealBackflow   float64 // reverse it registers for real backflow alone
	PhantomForward float64 // forward registered from self-rotation
	PhantomReverse float64
	Leak           bool // a leak ran during the interval
	Surge          bool // a surge episode ran during the interval
	Backflow       bool // a real backflow ran during the interval
	// BackflowShown: the readings show water going backwards that the same
	// meter without its backflows would not have shown: more reverse
	// registered in the interval, or a more negative flow read at its poll.
	// A backflow that never shows (under a totaliser step, between polls)
	// cannot be found by any filter.
	BackflowShown bool
}

// DefaultStart is where runs begin when Options.Start is zero: a Monday.
var DefaultStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// Run polls every meter of specs for o.Days and calls emit for each poll, in
// time order across meters (meters interleave as on a real gateway).
func Run(ctx context.Context, o Options, specs []MeterSpec, emit func(Row) error) error {
	start := o.Start
	if start.IsZero() {
		start = DefaultStart
	}
	end := start.Add(time.Duration(o.Days) * 24 * time.Hour)
	type live struct {
		spec  MeterSpec
		m     *water.Meter
		twin  *water.Meter // the same meter without its backflows, for BackflowShown
		twinR float64
		next  time.Time
		prev  water.Truth
		prevR float64
		first bool
	}
	ms := make([]*live, len(specs))
	for i, s := range specs {
		m, err := water.New(s.Water, o.Seed*1_000_003+int64(i), start)
		if err != nil {
			return err
		}
		ms[i] = &live{spec: s, m: m, next: start.Add(s.Offset), first: true}
		if len(s.Water.Backflows) > 0 {
			c := s.Water
			c.Backflows = nil
			if ms[i].twin, err = water.New(c, o.Seed*1_000_003+int64(i), start); err != nil {
				return err
			}
		}
	}
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		var l *live
		for _, c := range ms {
			if c.next.Before(end) && (l == nil || c.next.Before(l.next)) {
				l = c
			}
		}
		if l == nil {
			return nil
		}
		leakBefore := l.m.LeakOn()
		surgeBefore := l.prev.SurgeOn
		backBefore := l.prev.BackflowOn
		l.m.Advance(l.next)
		snap, tr := l.m.Snapshot(), l.m.Truth()
		row := Row{Time: l.next, Meter: l.spec.ID, Forward: snap.Forward, Reverse: snap.Reverse, Flow: snap.Flow}
		shown := false
		if l.twin != nil {
			l.twin.Advance(l.next)
			ts := l.twin.Snapshot()
			shown = snap.Reverse-l.prevR > ts.Reverse-l.twinR+1e-9 || snap.Flow < 0 && snap.Flow < ts.Flow-1e-9
			l.twinR = ts.Reverse
		}
		if !l.first {
			row.Truth = IntervalTruth{
				RealUse:        tr.RealUse - l.prev.RealUse,
				RealBackflow:   tr.RealBackflow - l.prev.RealBackflow,
				PhantomForward: tr.PhantomForward - l.prev.PhantomForward,
				PhantomReverse: tr.PhantomReverse - l.prev.PhantomReverse,
				Leak:           leakBefore || tr.LeakOn || tr.LeakVolume > l.prev.LeakVolume,
				Surge:          surgeBefore || tr.SurgeOn || tr.PhantomForward != l.prev.PhantomForward,
				Backflow:       backBefore || tr.BackflowOn || tr.RealBackflow > l.prev.RealBackflow,
				BackflowShown:  shown,
			}
		}
		l.first = false
		l.prev, l.prevR = tr, snap.Reverse
		l.next = l.next.Add(l.spec.Interval)
		if err := emit(row); err != nil {
			return err
		}
	}
}
