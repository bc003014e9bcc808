package water

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"time"

	"tidegate/reading"
)

// Meter is one simulated meter on one service pipe: the true flow q(t), and
// how the meter registers it. It is deterministic given its seed, and not
// safe for concurrent use (the simulator owns one per meter).
//
// Integration is event-driven: between breakpoints (an end use starting or
// stopping, a leak, a surge episode) the non-oscillating flow is constant and
// is registered in closed form; only during surge episodes is the flow
// stepped, at min(1 s, period/16), as the meter's own sampling would see it.
type Meter struct {
	cfg   Config
	seed  int64
	start time.Time
	mid0  time.Time // local midnight at or before start

	now    float64 // seconds since start
	genDay int     // next local day (since mid0) to draw events for
	genEnd float64 // seconds since start where undrawn days begin
	bps    bpHeap

	use, back, leak float64 // m3/h of non-oscillating flow now
	leaks, bursts   int
	empty           int
	valveClosed     bool // a meter's shut-off valve: nothing flows, whatever is drawn
	surge           surge

	// Registered (unquantised) and registered-without-surges accumulators, m3.
	fAcc, rAcc float64
	f0, r0     float64
	trueUse    float64
	trueBack   float64
	leakVol    float64

	cf, cr, gf, gr, res float64 // cut-offs m3/h, gains, resolution m3
	sample              float64 // meter's flow sampling period, s
}

type surge struct {
	on     bool
	id     int
	amp    float64 // m3/h
	omega  float64 // rad/s
	t0     float64
	period float64
}

type bpKind uint8

const (
	bpUse bpKind = iota
	bpLeak
	bpBurst
	bpBack
	bpEmpty
	bpSurgeOn
	bpSurgeOff
)

// breakpoint changes the flow at a time; on=false undoes an earlier one.
type breakpoint struct {
	at     float64
	kind   bpKind
	on     bool
	rate   float64 // m3/h, or surge amplitude
	period float64 // surge period, s
	id     int
}

type bpHeap []breakpoint

func (h bpHeap) Len() int           { return len(h) }
func (h bpHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h bpHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *bpHeap) Push(x any)        { *h = append(*h, x.(breakpoint)) }
func (h *bpHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// New builds a meter whose simulation begins at start. Local days (for the
// diurnal curve, opening hours and pump times) are in start's location.
func New(cfg Config, seed int64, start time.Time) (*Meter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	y, mo, d := start.Date()
	m := &Meter{
		cfg: cfg, seed: seed, start: start,
		mid0: time.Date(y, mo, d, 0, 0, 0, 0, start.Location()),
		cf:   cfg.Meter.CutoffLH / 1000, cr: cfg.Meter.ReverseCutoffLH / 1000,
		gf: cfg.Meter.ForwardGain, gr: cfg.Meter.ReverseGain, res: cfg.Meter.ResolutionL / 1000,
		sample: cfg.Meter.SampleS,
	}
	m.genEnd = m.mid0.Sub(start).Seconds()
	sched := func(set []Flow, kind bpKind) {
		for _, f := range set {
			at := time.Duration(f.After).Seconds()
			m.push(breakpoint{at: at, kind: kind, on: true, rate: f.RateLH / 1000})
			if f.For > 0 {
				m.push(breakpoint{at: at + time.Duration(f.For).Seconds(), kind: kind, on: false, rate: f.RateLH / 1000})
			}
		}
	}
	sched(cfg.Leaks, bpLeak)
	sched(cfg.Bursts, bpBurst)
	sched(cfg.Backflows, bpBack)
	for _, w := range cfg.EmptyPipe {
		at := time.Duration(w.After).Seconds()
		m.push(breakpoint{at: at, kind: bpEmpty, on: true})
		m.push(breakpoint{at: at + time.Duration(w.For).Seconds(), kind: bpEmpty, on: false})
	}
	return m, nil
}

func (m *Meter) push(b breakpoint) { heap.Push(&m.bps, b) }

// Now is the simulation time the meter has been advanced to.
func (m *Meter) Now() time.Time { return m.at(m.now) }

func (m *Meter) at(s float64) time.Time {
	return m.start.Add(time.Duration(math.Round(s * 1e9)))
}

// Advance integrates the flow up to to. Times before the current one are ignored.
func (m *Meter) Advance(to time.Time) {
	end := to.Sub(m.start).Seconds()
	for m.now < end {
		for m.genEnd <= m.now {
			m.drawDay()
		}
		for len(m.bps) > 0 && m.bps[0].at <= m.now {
			m.apply(heap.Pop(&m.bps).(breakpoint))
		}
		next := min(end, m.genEnd)
		if len(m.bps) > 0 && m.bps[0].at < next {
			next = m.bps[0].at
		}
		m.integrate(m.now, next)
		m.now = next
	}
}

// drawDay draws the end uses and surge episodes of the next local day, from
// a generator seeded by (seed, day) so any day is reproducible on its own.
func (m *Meter) drawDay() {
	day := m.genDay
	mid := m.mid0.AddDate(0, 0, day)
	base := mid.Sub(m.start).Seconds()
	m.genDay++
	m.genEnd = m.mid0.AddDate(0, 0, m.genDay).Sub(m.start).Seconds()
	r := rand.New(rand.NewPCG(uint64(m.seed), uint64(day)*0x9E3779B97F4A7C15+1))
	for _, e := range dayEvents(m.cfg, r, mid.Weekday()) {
		at := base + e.at.Seconds()
		m.push(breakpoint{at: at, kind: bpUse, on: true, rate: e.rate})
		m.push(breakpoint{at: at + e.dur.Seconds(), kind: bpUse, on: false, rate: e.rate})
	}
	s := m.cfg.Surges
	var starts []float64
	for n := poisson(r, s.PerDay); n > 0; n-- {
		if r.Float64() < s.NightShare {
			starts = append(starts, r.Float64()*5*3600)
		} else {
			starts = append(starts, r.Float64()*24*3600)
		}
	}
	for _, p := range s.PumpTimes {
		off, _ := parseClock(p) // validated in New
		starts = append(starts, off.Seconds()+r.Float64()*60)
	}
	for i, st := range starts {
		period := s.PeriodS * (0.7 + 0.6*r.Float64())
		amp := s.AmplitudeLH / 1000 * (0.5 + r.Float64())
		dur := time.Duration(s.Duration).Seconds() * (0.5 + r.Float64())
		// Whole periods: the column returns to where it started.
		dur = math.Max(1, math.Round(dur/period)) * period
		id := day*1000 + i + 1
		m.push(breakpoint{at: base + st, kind: bpSurgeOn, on: true, rate: amp, period: period, id: id})
		m.push(breakpoint{at: base + st + dur, kind: bpSurgeOff, id: id})
	}
}

func (m *Meter) apply(b breakpoint) {
	sign := 1.0
	if !b.on {
		sign = -1
	}
	switch b.kind {
	case bpUse:
		m.use += sign * b.rate
	case bpBurst:
		m.use += sign * b.rate
		m.bursts += int(sign)
	case bpLeak:
		m.leak += sign * b.rate
		m.leaks += int(sign)
	case bpBack:
		m.back += sign * b.rate
	case bpEmpty:
		m.empty += int(sign)
	case bpSurgeOn:
		if !m.surge.on { // overlapping episodes: the first one wins
			m.surge = surge{on: true, id: b.id, amp: b.rate, omega: 2 * math.Pi / b.period, t0: b.at, period: b.period}
		}
	case bpSurgeOff:
		if m.surge.on && m.surge.id == b.id {
			m.surge.on = false
		}
	}
	// Sums of many float adds drift: snap tiny residues to zero.
	if math.Abs(m.use) < 1e-12 {
		m.use = 0
	}
	if math.Abs(m.back) < 1e-12 {
		m.back = 0
	}
	if math.Abs(m.leak) < 1e-12 {
		m.leak = 0
	}
}

// integrate registers the flow over [a, b) seconds.
func (m *Meter) integrate(a, b float64) {
	if b <= a || m.empty > 0 || m.valveClosed {
		return // a drained or shut-off pipe carries nothing
	}
	hours := (b - a) / 3600
	m.trueUse += (m.use + m.leak) * hours
	m.trueBack += m.back * hours
	m.leakVol += m.leak * hours
	u := m.use + m.leak - m.back
	switch {
	case u >= m.cf && u > 0:
		m.f0 += m.gf * u * hours
	case u <= -m.cr && u < 0:
		m.r0 += m.gr * -u * hours
	}
	if !m.surge.on {
		m.register(u, hours)
		return
	}
	// The meter samples the flow every sample_s, on a grid anchored at the
	// simulation start (so its phase to the oscillation is arbitrary and how
	// a caller chunks Advance does not matter), and registers each sample
	// as flow × sample period: oscillations near or faster than the
	// sampling alias, so samples show random signs, as on real meters.
	step := m.sample
	k := math.Floor(a / step)
	for t := a; t < b; k++ {
		cellEnd := (k + 1) * step
		e := math.Min(cellEnd, b)
		if e > t {
			q := u + m.surge.amp*math.Sin(m.surge.omega*(k*step-m.surge.t0))
			m.register(q, (e-t)/3600)
		}
		t = math.Max(t, e)
	}
}

// register is the meter's metrology: cut-off, then direction-dependent gain.
func (m *Meter) register(q, hours float64) {
	switch {
	case q >= m.cf && q > 0:
		m.fAcc += m.gf * q * hours
	case q <= -m.cr && q < 0:
		m.rAcc += m.gr * -q * hours
	}
}

// flowNow is the registered instantaneous flow, m3/h, signed.
func (m *Meter) flowNow() float64 {
	if m.empty > 0 || m.valveClosed {
		return 0
	}
	q := m.use + m.leak - m.back
	if m.surge.on {
		q += m.surge.amp * math.Sin(m.surge.omega*(m.now-m.surge.t0))
	}
	switch {
	case q >= m.cf && q > 0:
		return m.gf * q
	case q <= -m.cr && q < 0:
		return m.gr * q
	}
	return 0
}

func (m *Meter) quantise(v float64) float64 {
	if m.res <= 0 {
		return v
	}
	return math.Floor(v/m.res+1e-9) * m.res
}

// Snapshot is what the meter's electronics show now.
func (m *Meter) Snapshot() Snapshot {
	days := m.now / 86400
	now := m.at(m.now)
	s := Snapshot{
		Time:       now,
		MeterClock: m.at(m.now * (1 + m.cfg.Meter.ClockDriftPPM*1e-6)),
		Forward:    m.quantise(m.fAcc),
		Reverse:    m.quantise(m.rAcc),
		Flow:       m.flowNow(),
	}
	hour := float64(now.Sub(m.mid0)%(24*time.Hour)) / float64(time.Hour)
	s.Temperature = math.Round((12+2*math.Sin(2*math.Pi*(hour-9)/24))*10) / 10
	s.BatteryMV = uint16(math.Max(0, m.cfg.Meter.BatteryMV-m.cfg.Meter.BatteryDropMV*days))
	if s.Flow < 0 {
		s.Status |= reading.StatusReverseFlow
	}
	if m.empty > 0 {
		s.Status |= reading.StatusEmptyPipe
	}
	if m.leaks > 0 && m.leak >= m.cf {
		s.Status |= reading.StatusLeak // the meter's own alarm: it sees flow that never stops
	}
	if m.bursts > 0 {
		s.Status |= reading.StatusBurst
	}
	if float64(s.BatteryMV) < m.cfg.Meter.LowBatteryMV {
		s.Status |= reading.StatusLowBattery
	}
	return s
}

// SetValve closes or opens the meter's shut-off valve from the time the
// meter has been advanced to (Advance first): while it is closed no water
// flows, neither use, leaks, backflow nor self-rotation (the column is
// held still).
func (m *Meter) SetValve(closed bool) { m.valveClosed = closed }

// ValveClosed reports the valve's state.
func (m *Meter) ValveClosed() bool { return m.valveClosed }

// Truth is the ground truth since the start, cumulative, m3.
type Truth struct {
	// RealUse is the forward volume the meter would have registered for the
	// real use alone (its cut-off and gain applied, no surges): what a perfect
	// filter outputs as consumption.
	RealUse float64
	// RealBackflow likewise for real reverse flow.
	RealBackflow float64
	// PhantomForward / PhantomReverse: what the surges added to the registered
	// forward / reverse totals (before quantisation).
	PhantomForward float64
	PhantomReverse float64
	TrueUse        float64 // water actually drawn (incl. leaks), m3
	TrueBackflow   float64 // water actually pushed back, m3
	LeakVolume     float64 // water lost through leaks, m3
	LeakOn         bool    // a leak is running now
	SurgeOn        bool    // the column is oscillating now
	BackflowOn     bool    // real water is flowing back into the main now
}

// Truth returns the cumulative ground truth at the current time.
func (m *Meter) Truth() Truth {
	return Truth{
		RealUse: m.f0, RealBackflow: m.r0,
		PhantomForward: m.fAcc - m.f0, PhantomReverse: m.rAcc - m.r0,
		TrueUse: m.trueUse, TrueBackflow: m.trueBack, LeakVolume: m.leakVol,
		LeakOn: m.leaks > 0 && m.leak > 0, SurgeOn: m.surge.on,
		BackflowOn: m.back > 0 && m.empty == 0 && !m.valveClosed,
	}
}

// RealUse is the cumulative forward volume registered for real use, m3.
func (m *Meter) RealUse() float64 { return m.f0 }

// Phantom is the cumulative forward volume registered from self-rotation, m3.
func (m *Meter) Phantom() float64 { return m.fAcc - m.f0 }

// RealBackflow is the cumulative reverse volume registered for real backflow, m3.
func (m *Meter) RealBackflow() float64 { return m.r0 }

// LeakOn reports whether a leak is running now.
func (m *Meter) LeakOn() bool { return m.leaks > 0 && m.leak > 0 }
