package filter

import "time"

// Leak: the minimum-night-flow test. Over the night window 01–05 h local a
// household is mostly quiet (85 % of the hours 02–04 have no use at all); a
// leak is flow that never stops. A night is leaking when its mean
// consumption is at least LeakFlow and no quiet gap longer than 20 minutes
// occurs. A coarse (≥ 5 L) totaliser needs at least 4 steps, gaps of at most
// 2.5 steps at that flow (≤ 90 min), a forward step in every night hour
// with a bounded spread between hours, and a step of consumption in at
// least two of them, and where the meter reports its instantaneous flow,
// forward flow in 60 % of the night's polls. Independently of all that, a
// meter whose own flow reading is at least LeakFlow in 60 % of the night's
// polls (a median, which surges and a night visit do not move) while its
// forward total moved by half that flow's volume is leaking: this finds the
// leak whose consumption pairing took partly for phantom, or a real
// backflow interrupted. A leak stays flagged until a night passes neither
// test.

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
	leakGapCoarse   = int64(90 * time.Minute)
	leakSteps       = 4
	coarseRes       = 0.005 // m3
	coarseHoursUsed = 2     // night hours with a step of consumption
	coarseSpread    = 4     // the busiest night hour has at most 3× the quietest and this many steps
	flowPolls       = 4     // night polls with instantaneous flow that make the flow test count
	flowShare       = 0.6   // share of them with forward flow on a leaking night
)

type leakState struct {
	on       bool
	inNight  bool
	vol      float64
	covered  int64 // ns of the window seen
	lastUse  int64
	maxGap   int64
	nightEnd int64
	hourF    [nightTo - nightFrom]float64 // forward registered in each night hour
	hourC    [nightTo - nightFrom]float64 // consumption in each night hour
	nFlow    uint16                       // night polls that reported instantaneous flow
	nPos     uint16                       // and of those, positive flow
	nAbove   uint16                       // and of those, at least LeakFlow
}

func (l *leakState) reset() { *l = leakState{on: l.on} }

// observe feeds a released interval; it reports true when a leak starts.
// On a coarse totaliser any forward step counts as flow for the quiet test
// (pairing may have called a leak's step phantom); on a fine one only
// consumption does, or surges all night would pass for a leak. The night
// flow itself is always consumption.
func (l *leakState) observe(start, t int64, cons, dF, res float64, flow float64, hasFlow bool, d *dayState, c *Config) bool {
	present := cons > 0 || (dF > 0 && res >= coarseRes)
	from := d.start + nightFrom*int64(time.Hour)
	to := d.start + nightTo*int64(time.Hour)
	if t > from && start < to && !l.inNight && l.nightEnd != to {
		l.inNight, l.vol, l.covered, l.lastUse, l.maxGap, l.nightEnd = true, 0, 0, from, 0, to
		l.hourF = [nightTo - nightFrom]float64{}
		l.hourC = [nightTo - nightFrom]float64{}
		l.nFlow, l.nPos, l.nAbove = 0, 0, 0
	}
	if !l.inNight {
		return false
	}
	if start < l.nightEnd {
		l.covered += min(t, l.nightEnd) - max(start, l.nightEnd-int64(nightTo-nightFrom)*int64(time.Hour))
		l.vol += cons
		if h := (t - 1 - (l.nightEnd - int64(nightTo-nightFrom)*int64(time.Hour))) / int64(time.Hour); h >= 0 && h < nightTo-nightFrom {
			l.hourF[h] += dF
			l.hourC[h] += cons
		}
		if present {
			l.maxGap = max(l.maxGap, start-l.lastUse)
			l.lastUse = t
		}
		if hasFlow && t <= l.nightEnd {
			l.nFlow++
			if flow > 0 {
				l.nPos++
			}
			if flow >= c.LeakFlow {
				l.nAbove++
			}
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
	if res >= coarseRes {
		// A few coarse steps cannot show a gap pattern; a leak steps every
		// hour at a steady rate, a household's night visits do not. Surge
		// steps add to some hours, hence the generous spread. (Judged on
		// consumption instead, no false leak remains but 3 % of coarse
		// leaks are missed: a missed leak is the worse error.)
		lo, hi := l.hourF[0], l.hourF[0]
		for _, v := range l.hourF[1:] {
			lo, hi = min(lo, v), max(hi, v)
		}
		used := 0
		for _, v := range l.hourC {
			if v >= res*0.999 {
				used++
			}
		}
		leaking = leaking && lo >= res*0.999 && hi <= 3*lo+coarseSpread*res+res*0.001 && used >= coarseHoursUsed
		// Where the meter reports its instantaneous flow, a leak shows as
		// forward flow in almost every poll of the night (surges swing it
		// both ways now and then); night use and surge steps do not.
		if l.nFlow >= flowPolls && float64(l.nPos) < flowShare*float64(l.nFlow) {
			leaking = false
		}
	}
	if l.nFlow >= flowPolls && float64(l.nAbove) >= flowShare*float64(l.nFlow) {
		var fwd float64
		for _, v := range l.hourF {
			fwd += v
		}
		// The meter's own flow reading says water ran all night at the
		// leak threshold or more (a median over the polls, robust to
		// surges and a night visit), and the totals moved accordingly:
		// a leak, whatever share of it pairing took for phantom.
		if fwd >= 0.5*c.LeakFlow*float64(nightTo-nightFrom) {
			leaking = true
		}
	}
	started := leaking && !l.on
	l.on = leaking
	return started
}
