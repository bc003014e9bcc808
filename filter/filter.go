package filter

import (
	"sort"
	"tidegate/reading"
	"time"
)

// Output is what the filter emits: readings with Filter set, in each
// meter's order (held back at most Config.Window), daily summaries and events.
type Output struct {
	Readings []reading.Reading
	Days     []reading.DailySummary
	Events   []reading.Event
}

// Reset empties o keeping its storage, for reuse with PushTo.
func (o *Output) Reset() {
	clear(o.Readings)
	o.Readings, o.Days, o.Events = o.Readings[:0], o.Days[:0], o.Events[:0]
}

// Filter is the self-rotation filter for any number of meters. Not safe for
// concurrent use: the daemon feeds it from one goroutine.
type Filter struct {
	cfg    Config
	meters map[string]*meter
	// prior is the ratio a meter starts from: the median of the ratios the
	// filter's meters have learned with confidence (a concentrator's
	// meters are mostly one model, with similar reverse errors), or
	// Config.InitialRatio until three have.
	prior  float64
	pushes uint32
}

// New returns a filter. An invalid cfg is replaced by the defaults (keeping
// its Location): check it with Config.Validate first to tell the user.
func New(cfg Config) *Filter {
	if cfg.Validate() != nil {
		cfg = Config{Location: cfg.Location}
	}
	cfg = cfg.withDefaults()
	return &Filter{cfg: cfg, meters: map[string]*meter{}, prior: cfg.InitialRatio}
}

// Push feeds one reading (time-ordered per meter; meters may interleave)
// and returns what became final.
func (f *Filter) Push(r reading.Reading) (out []reading.Reading, days []reading.DailySummary, events []reading.Event) {
	var o Output
	f.PushTo(&o, r)
	return o.Readings, o.Days, o.Events
}

// PushTo is Push appending to o: no allocation beyond the outputs.
func (f *Filter) PushTo(o *Output, r reading.Reading) {
	m := f.meters[r.Meter]
	if m == nil {
		m = newMeter(r.Meter, &f.cfg)
		f.meters[r.Meter] = m
	}
	if f.pushes++; f.pushes%priorEvery == 0 {
		f.prior = f.fleetPrior()
	}
	m.arrive(r, &f.cfg, f.prior, o)
}

// priorEvery is how many readings pass between updates of the fleet prior.
const priorEvery = 1024

func (f *Filter) fleetPrior() float64 {
	var rs []float64
	for _, m := range f.meters {
		if m.learned && m.learn.confident(m.res) {
			rs = append(rs, m.ratio)
		}
	}
	if len(rs) < 3 {
		return f.cfg.InitialRatio
	}
	sort.Float64s(rs)
	return rs[len(rs)/2]
}

// Flush releases every held-back interval of every meter (at shutdown, or
// at the end of a file). Days stay open: use FlushDays at the end of data.
func (f *Filter) Flush() Output {
	var o Output
	for _, id := range f.ids() {
		f.meters[id].release(1<<63-1, &f.cfg, &o)
	}
	return o
}

// End releases everything at the end of a finite data set (a file, an
// evaluation): the held-back intervals, and the totaliser credit still
// waiting for the other half of a surge, which goes into each meter's last
// interval (forward as consumption, reverse as backflow), so the volumes
// add up. The daemon uses Flush instead: its meters go on after a restart.
func (f *Filter) End() Output {
	var o Output
	for _, id := range f.ids() {
		m := f.meters[id]
		m.ending = true
		m.release(1<<63-1, &f.cfg, &o)
		m.ending = false
		m.closeBackflow(0, time.Unix(0, m.lastT).UTC(), true, &o)
	}
	return o
}

// FlushDays emits the summaries of the days still open, as they stand.
func (f *Filter) FlushDays() []reading.DailySummary {
	var out []reading.DailySummary
	for _, id := range f.ids() {
		m := f.meters[id]
		if m.day.any {
			out = append(out, m.day.summary(id, f.cfg.Location))
			m.day.any = false
		}
	}
	return out
}

// Ratio is a meter's learned reverse/forward registration ratio (0 when unknown meter).
func (f *Filter) Ratio(meter string) float64 {
	if m := f.meters[meter]; m != nil {
		return m.ratio
	}
	return 0
}

// Meters lists the meters the filter holds state for, sorted.
func (f *Filter) Meters() []string { return f.ids() }
