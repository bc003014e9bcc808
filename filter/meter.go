package filter

import (
	"math"
	"strconv"
	"time"

	"tidegate/reading"
)

// meter is everything the filter keeps about one meter between readings.
type meter struct {
	id    string
	init  bool
	lastT int64 // unix ns of the last accepted reading, on the corrected timeline
	// The meter's timeline is monotonic: clockOff is added to a reading's
	// own time after its clock (or the gateway's) stepped back; lastGap is
	// the last interval's length, which the stepped interval is taken to
	// have; lastRecv is when the gateway received the last reading.
	clockOff, lastGap, lastRecv int64
	lastF, lastR                float64
	res                         float64 // smallest total step seen, m3: the totaliser resolution
	resSeen                     bool    // res is measured, not the initial guess
	ratio                       float64 // current reverse/forward ratio
	learn                       ratioLearner
	learned                     bool // ratio is the meter's own, not the prior

	pending []item // held-back intervals, oldest first
	credit  credit
	ending  bool // End: the last pending interval takes the credit

	lastRevT  int64   // last reverse registration or reverse flow
	stuckVol  float64 // flow reported while the totals stood still, m3
	lastConsT int64   // last consumption
	noUse     bool
	lastBackT int64
	backVol   float64 // backflow in the current episode, m3
	backSurge float64 // surge reverse lately and beside it, m3: it may be a surge's tail
	backBy    bool    // surge volume was paired in its own intervals
	surgeRev  float64 // surge reverse paired lately (decaying over backflowGap), m3
	surgeT    int64
	backStart int64 // start of the current episode
	backSent  bool  // its backflow event is out
	backEv    evidence
	run       flowRun
	prevFlow  float64 // the flow read at the last poll, m3/h

	burst burstState
	leak  leakState
	day   dayState
}

// item is one interval waiting in the hold-back window.
type item struct {
	r      reading.Reading
	start  int64
	t      int64
	dF, dR float64 // registered in the interval, m3
	uf, ur float64 // not yet paired: forward, and reverse in forward-equivalent m3
	pf     float64 // forward paired with reverse: phantom
	steady float64 // forward of a steady flow (a leak): consumption, paired with nothing
	// flowBack is the backflow the meter's flow readings measured over the
	// interval (both ends read steady backwards flow, no forward moved), m3.
	flowBack float64
	flowOK   bool    // the run it lies in measured a backflow
	ratio    float64 // ratio in force when the interval arrived
	flags    reading.FilterFlags
}

const (
	stuckFaultSteps = 10   // totaliser steps of reported flow with totals standing still
	stuckFaultVol   = 0.05 // and at least this, m3
	initialRes      = 0.001
)

func newMeter(id string, c *Config) *meter {
	return &meter{id: id, res: initialRes, ratio: c.InitialRatio}
}

// arrive turns a reading into an interval, pairs its phantom and holds it
// back; intervals older than the window are released into out.
func (m *meter) arrive(r reading.Reading, c *Config, prior float64, out *Output) {
	t := readingTime(r) + m.clockOff
	good := r.Quality == reading.QualityGood && r.Has&reading.HasForward != 0 && finite(r.Forward) && finite(r.Reverse)
	if !m.init {
		if !good {
			return // nothing to start from yet
		}
		m.init, m.lastT, m.lastF, m.lastR = true, t, r.Forward, r.Reverse
		m.lastRecv = r.Received.UnixNano()
		m.lastConsT = t
		m.day.reset(t, c.Location)
		m.leak.reset()
		return
	}
	if good {
		t = m.steady(t, r, out)
	}
	it := item{r: r, start: m.lastT, t: t}
	if !good {
		it.t = max(t, m.lastT) // a failed poll: an empty interval
	} else {
		m.deltas(&it, r, c, out)
		m.flowRun(&it)
	}
	// Reverse registered, or water moving backwards at the poll (the meter's
	// instantaneous flow): a surge is under way, or a backflow.
	surging := it.dR > 0 || r.Has&reading.HasFlow != 0 && r.Flow < 0
	if surging && !single(r) {
		m.lastRevT = t
	}
	if single(r) {
		// One total (CJ/T 188): no ratio can be learned from it. A step
		// back is water that went back through the meter, so it pairs
		// one for one with the forward it cancels; what the total never
		// showed coming back is not removed. Only a step back makes
		// forward wait in the credit (a forward-only total never steps
		// back: its surges are flagged, nothing is held). Surge activity
		// is flagged even where nothing can be shown phantom.
		if it.dR > 0 {
			m.lastRevT = t
		}
		if surging {
			it.flags |= reading.FlagSelfRotation
		}
		it.ratio = 1
		m.pair(&it)
		m.pending = append(m.pending, it)
		m.release(it.t-int64(c.Window), c, out)
		return
	}
	if m.learn.observe(it.start, it.t, it.dF, it.dR, m.res) || !m.learned {
		// A ratio once learned (or restored) stays until the learner
		// has one of its own; a meter never learned follows the prior.
		if rho, ok := m.learn.estimate(prior, m.res); ok || !m.learned {
			m.ratio, m.learned = rho, ok
		}
	}
	it.ratio = m.ratio // the ratio pairing converts with, and release converts back with
	m.pair(&it)
	if good {
		m.prevFlow = r.Flow
	}
	m.pending = append(m.pending, it)
	m.release(it.t-int64(c.Window), c, out)
}

// clockSlack is how much longer than the last interval a forward jump of
// the time must be to give back a correction made at a step back (the clock
// set right again), rather than be a late poll.
const clockSlack = int64(10 * 60e9)

// steady places a good reading's time t (its own time plus the correction
// so far) on the meter's monotonic timeline. A step back of the meter's
// clock (summer time ending on a meter without the zone, a reset, a battery
// swap) or of the gateway's is a clock_step event: the interval is taken to
// be as long as the last one (on a meter with a clock, as long as the
// gateway saw it take) and the counting goes on from there. A later jump
// forward while a correction is held is the clock set right again: it
// gives the correction back, as far as it goes beyond a poll.
func (m *meter) steady(t int64, r reading.Reading, out *Output) int64 {
	recv := r.Received.UnixNano()
	gap := m.lastGap
	if r.Has&reading.HasMeterTime != 0 && recv >= m.lastRecv && m.lastRecv != 0 {
		gap = recv - m.lastRecv
	}
	m.lastRecv = recv
	var step int64
	switch {
	case t < m.lastT:
		want := m.lastT + gap
		step = t - want
	case m.clockOff > 0 && t-m.lastT > gap+clockSlack:
		step = min(m.clockOff, t-m.lastT-gap)
	default:
		return t
	}
	m.clockOff -= step
	out.Events = append(out.Events, reading.Event{Time: r.Received, Meter: m.id, Type: "clock_step",
		Message: "the reading's clock stepped; counting goes on from the new time",
		Attrs:   map[string]string{"step_s": strconv.FormatFloat(float64(step)/1e9, 'f', 0, 64)}})
	return t - step
}

// deltas computes the registered volumes of the interval ending at r,
// handling rollover (not a fault), resets and impossible jumps (faults).
func (m *meter) deltas(it *item, r reading.Reading, c *Config, out *Output) {
	dF, okF := step(m.lastF, r.Forward)
	dR, okR := 0.0, true
	if r.Has&reading.HasReverse != 0 {
		dR, okR = step(m.lastR, r.Reverse)
	} else if drop := m.lastF - r.Forward; !okF && drop <= singleMaxDrop {
		// One total that nets reverse flow out: a small step back is
		// reverse registration (self-rotation, or a backflow), not a reset.
		dF, dR, okF = 0, drop, true
	}
	if !okF || !okR {
		it.flags |= reading.FlagMeterFault
		out.Events = append(out.Events, reading.Event{Time: r.Received, Meter: m.id, Type: "meter_fault",
			Message: "totals stepped backwards: meter reset or replaced; restarting from the new totals"})
		dF, dR = 0, 0
	}
	hours := float64(it.t-it.start) / float64(time.Hour)
	if hours > 0 && (dF+dR)/hours > c.MaxPipeFlow && dF+dR > 10*m.res {
		it.flags |= reading.FlagMeterFault // more than the pipe can carry: not counted
		dF, dR = 0, 0
	}
	if r.Status&(reading.StatusMeterError|reading.StatusEmptyPipe) != 0 {
		it.flags |= reading.FlagMeterFault
	}
	if r.Has&reading.HasFlow != 0 && dF == 0 && dR == 0 && r.Status&reading.StatusEmptyPipe == 0 {
		m.stuckVol += math.Abs(r.Flow) * hours
		if m.stuckVol > max(stuckFaultSteps*m.res, stuckFaultVol) {
			it.flags |= reading.FlagMeterFault // flow reported, totals frozen
		}
	} else {
		m.stuckVol = 0
	}
	for _, d := range [2]float64{dF, dR} {
		if d > 1e-7 && (d < m.res || !m.resSeen) {
			// Totalisers step in decades of litres; a slow poll may
			// only have seen several steps at once.
			m.res, m.resSeen = math.Pow(10, math.Floor(math.Log10(d)+1e-6)), true
		}
	}
	it.dF, it.dR = dF, dR
	if it.t > m.lastT {
		m.lastGap = it.t - m.lastT
	}
	m.lastT, m.lastF = it.t, r.Forward
	if r.Has&reading.HasReverse != 0 {
		m.lastR = r.Reverse
	}
}

// singleMaxDrop is the largest step back of a single total taken for
// reverse flow: a surge nets out a few litres a poll, a backflow tens; a
// meter reset or replacement drops by more.
const singleMaxDrop = 0.2 // m3

// single reports a meter with one cumulative total and no reverse register.
func single(r reading.Reading) bool {
	return r.Has&reading.HasForward != 0 && r.Has&reading.HasReverse == 0
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// step is the increase from prev to now of a cumulative total. A drop from
// near a power of ten to near zero is the totaliser rolling over; any other
// drop is a reset (ok false).
func step(prev, now float64) (float64, bool) {
	const eps = 1e-9
	if now >= prev-eps {
		return max(now-prev, 0), true
	}
	p := math.Pow(10, math.Ceil(math.Log10(prev+eps)))
	if prev >= 0.9*p && now < 0.1*p {
		return p - prev + now, true
	}
	return 0, false
}

// readingTime is when the values were measured: the meter's own clock where
// the reading carries it (M-Bus), which is also what a simulator's
// accelerated time looks like; else when the gateway received it.
func readingTime(r reading.Reading) int64 {
	if r.Has&reading.HasMeterTime != 0 && !r.MeterTime.IsZero() {
		return r.MeterTime.UnixNano()
	}
	return r.Received.UnixNano()
}
