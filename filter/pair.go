package filter

import (
	"math"

	"tidegate/reading"
)

// Pairing within the hold-back window. A surge moves water in and back out
// within one oscillation period (seconds to a minute), so the forward and
// the reverse halves usually fall in the same or adjacent polls. Reverse is
// converted to forward-equivalent volume with the meter's learned ratio and
// paired first with the interval's own forward, then with the nearest
// unpaired forward (or reverse) held back from the last pairSpan. Paired forward is phantom.
// Real use rarely meets real backflow within minutes, so what stays unpaired
// is real.

// pairSpan is how far before an interval's start a held-back interval may
// be to pair with it: the halves of an oscillation are at most a period
// (≤ 1 min) apart, so with slow polls only the adjacent interval qualifies.
const pairSpan = int64(3 * 60e9)

func (m *meter) pair(it *item) {
	rev := it.dR / it.ratio
	// A steady flow (a leak) runs through every interval: where the polls
	// at both ends read it, no oscillation was under way there, and that
	// much forward is no oscillation's half: it pairs with nothing, so a
	// leak cannot hide a backflow beside it.
	steady := min(it.dF, m.steadyRate(it)*float64(it.t-it.start)/3600e9)
	p := min(it.dF-steady, rev)
	it.pf = p
	it.uf, it.ur = it.dF-steady-p, rev-p
	it.steady = steady
	budget := math.Inf(1)
	for i := len(m.pending) - 1; i >= 0 && (it.uf > 0 || it.ur > 0) && budget > 0; i-- {
		o := &m.pending[i]
		if o.t < it.start-pairSpan {
			break // further back than an oscillation: a real use meeting a real backflow
		}
		if stillAt(o.r) {
			// The column stood still at the poll between: no oscillation
			// spans it, only a totaliser step's carry of one.
			budget = min(budget, m.res/it.ratio)
		}
		if it.ur > 0 && o.uf > 0 {
			q := min(it.ur, o.uf, budget)
			o.uf -= q
			o.pf += q
			it.ur -= q
			budget -= q
		}
		if it.uf > 0 && o.ur > 0 {
			q := min(it.uf, o.ur, budget)
			o.ur -= q
			it.uf -= q
			it.pf += q
			budget -= q
		}
	}
}

// steadyRate is the steady flow (a leak, as the ratio learner measures it,
// m3/h) where the polls at both ends of it read it, so no oscillation was
// under way at them; else 0. m.prevFlow must still be the poll before it.
func (m *meter) steadyRate(it *item) float64 {
	b := m.learn.baseline()
	if b <= 0 || it.r.Has&reading.HasFlow == 0 || !steadyAt(it.r.Flow, b) || !steadyAt(m.prevFlow, b) {
		return 0
	}
	return b
}

// steadyAt reports a poll whose flow reading is the steady flow b (m3/h).
func steadyAt(flow, b float64) bool {
	return flow >= b/runSteady && flow <= b*runSteady
}

// stillAt reports a poll at which the meter's flow reading showed no water
// moving: the halves of one oscillation cannot lie on both sides of it.
func stillAt(r reading.Reading) bool {
	return r.Has&reading.HasFlow != 0 && r.Flow == 0
}
