package filter

import "time"

// Leak: the minimum-night-flow test. Over the night window 01–05 h local a
// household is mostly quiet (85 % of the hours 02–04 have no use at all); a
// leak is flow that never stops. A night is leaking when its mean
// consumption is at least LeakFlow and no quiet gap longer than 20 minutes
// (or 2.5 totaliser steps at that flow, for coarse totalisers) occurs. A leak stays
// flagged until a night passes the test.

const (
	nightFrom = 1 // local hours
	nightTo   = 5
	// leakGap is the longest quiet a leaking night may show (longer for a
	// coarse totaliser, which steps only every res/flow). A household at
	// night uses water in bursts of minutes, with quiet quarter-hours between.
	leakGap = int64(20 * time.Minute)
	// A coarse totaliser shows a leak as a few evenly spaced steps; fewer
	// than leakSteps a night, or gaps over leakGapCoarse, cannot be told
	// from a household's night visits.
	leakGapCoarse = int64(90 * time.Minute)
	leakSteps     = 4
	coarseRes     = 0.005 // m3
)

type leakState struct {
	on       bool
	inNight  bool
	vol      float64
	covered  int64 // ns of the window seen
	lastUse  int64
	maxGap   int64
	nightEnd int64
}

func (l *leakState) reset() { *l = leakState{on: l.on} }

// observe feeds a released interval; it reports true when a leak starts.
// On a coarse totaliser any forward step counts as flow for the quiet test
// (pairing may have called a leak's step phantom); on a fine one only
// consumption does, or surges all night would pass for a leak. The night
// flow itself is always consumption.
func (l *leakState) observe(start, t int64, cons, dF, res float64, d *dayState, c *Config) bool {
	if res < coarseRes {
		dF = 0
	}
	from := d.start + nightFrom*int64(time.Hour)
	to := d.start + nightTo*int64(time.Hour)
	if t > from && start < to && !l.inNight && l.nightEnd != to {
		l.inNight, l.vol, l.covered, l.lastUse, l.maxGap, l.nightEnd = true, 0, 0, from, 0, to
	}
	if !l.inNight {
		return false
	}
	if start < l.nightEnd {
		l.covered += min(t, l.nightEnd) - max(start, l.nightEnd-int64(nightTo-nightFrom)*int64(time.Hour))
		l.vol += cons
		if cons > 0 || dF > 0 {
			l.maxGap = max(l.maxGap, start-l.lastUse)
			l.lastUse = t
		}
	}
	if t < l.nightEnd {
		return false
	}
	l.inNight = false
	l.maxGap = max(l.maxGap, l.nightEnd-l.lastUse)
	span := float64(nightTo-nightFrom) * float64(time.Hour)
	if float64(l.covered) < 0.75*span {
		return false // not enough of the night seen to judge
	}
	mnf := l.vol / (span / float64(time.Hour))
	gapOK := leakGap
	if mnf > 0 {
		gapOK = min(leakGapCoarse, max(gapOK, int64(2.5*res/mnf*float64(time.Hour))))
	}
	leaking := mnf >= c.LeakFlow && l.maxGap <= gapOK && l.vol >= leakSteps*res
	started := leaking && !l.on
	l.on = leaking
	return started
}
