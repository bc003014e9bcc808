package filter

import "tidegate/reading"

// A backflow moves water one way at a rate that holds for minutes; a surge
// oscillates, and what a poll reads of it changes sign and size from poll
// to poll, while its forward half moves the forward total. So polls in a row
// that read backwards flow of about the same size, with no forward
// registered among them, measure a backflow, even one too small to move a
// coarse reverse total (4 L on a 10 L totaliser): its volume is the flow
// read times the time between them. A surge whose period is close to a
// divisor of the poll interval reads almost the same from poll to poll for
// a while (aliasing); runMin polls and the forward total standing still
// tell most of those apart.

const (
	runGap    = int64(5 * 60e9) // polls further apart say nothing of the flow between them
	runSteady = 1.25            // the most backwards flows in a run may differ by, as a ratio
	runMin    = 4               // polls in a run before it measures a backflow
)

// flowRun is the run of consecutive polls that read backwards flow.
type flowRun struct {
	n      uint16
	lo, hi float64 // least and most backwards flow read in the run, m3/h
	last   float64 // the last poll's, m3/h
	start  int64   // the first poll's time
	// fwdT is when forward last registered: a surge's forward half moves
	// the forward total around the run, a backflow's never does. ended is
	// the start of the last run that measured a backflow and endT its last
	// poll, so forward just after it can undo it.
	fwdT, ended, endT int64
}

// runGuard is how near a run forward may not register.
const runGuard = int64(2 * 60e9)

// flowRun extends the run with the good interval it. Once the run has
// runMin polls, it and the held-back intervals of the run carry the
// backflow the readings measured (item.flowOK). Forward registered in the
// run or within runGuard of it, or a flow that changed too much, ends it;
// forward undoes what the run marked in the intervals still held back.
func (m *meter) flowRun(it *item) {
	r := &m.run
	// A leak's forward steps, polled between readings of its steady flow,
	// are no surge's forward half.
	if it.dF > 0 && m.steadyRate(it) == 0 {
		r.fwdT = it.t
		if r.n >= runMin {
			m.markRun(r.start, false)
		}
		if r.ended != 0 && it.t-r.endT <= runGuard {
			m.markRun(r.ended, false)
		}
		r.ended = 0
	}
	back := it.r.Has&reading.HasFlow != 0 && it.r.Flow < 0
	q := -it.r.Flow
	if back && r.n > 0 && it.t-it.start <= runGap && it.dF == 0 && max(r.hi, q) <= runSteady*min(r.lo, q) {
		it.flowBack = (r.last + q) / 2 * float64(it.t-it.start) / 3600e9
		r.n++
		r.lo, r.hi, r.last = min(r.lo, q), max(r.hi, q), q
		noFwdBefore := r.start-r.fwdT > runGuard
		if r.n == runMin && noFwdBefore {
			m.markRun(r.start, true)
		}
		it.flowOK = r.n >= runMin && noFwdBefore
		if it.flowOK {
			r.ended, r.endT = r.start, it.t
		}
		return
	}
	r.n = 0
	if back {
		r.n, r.lo, r.hi, r.last, r.start = 1, q, q, q, it.t
	}
}

// markRun sets or clears flowOK on the held-back intervals of the run
// that began at from.
func (m *meter) markRun(from int64, ok bool) {
	for i := range m.pending {
		if o := &m.pending[i]; o.t > from && o.flowBack > 0 {
			o.flowOK = ok
		}
	}
}

// evidence is what shows a backflow episode, weakest first.
type evidence uint8

const (
	// evResidual: reverse that no forward paired, beside a surge: a
	// backflow under the surge, or the surge's tail (its ratio off by a
	// few per cent, a totaliser step).
	evResidual evidence = iota
	// evVolume: more reverse in an interval than any surge registers with
	// the forward beside it, or reverse with no surge anywhere near.
	evVolume
	// evFlow: the meter read steady backwards flow poll after poll.
	evFlow
)

func (e evidence) String() string {
	return [...]string{"residual", "volume", "flow"}[e]
}

// straddle is the forward of one oscillation that may lie across a poll,
// m3: half a period of a strong surge (400 L/h for 30 s registers about
// 2 L each way).
const straddle = 0.002

// surgeReverseMax is the most reverse a surge registers in an interval
// with forward dF: the ratio at the top of its uncertainty times the
// forward, a step of either totaliser not yet shown, and an oscillation
// straddling each poll. Reverse beyond it is a backflow's, whatever the
// pairing makes of it.
func (m *meter) surgeReverseMax(dF, ratio float64) float64 {
	return ratio*(1+useAllowShare)*(dF+m.res+2*straddle) + m.res
}
