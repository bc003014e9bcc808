// Package score measures the self-rotation filter against the simulator's
// ground truth, aggregated per meter-hour: phantom removed, real use
// removed, volume added, real backflow kept, leaks found, meters falsely
// flagged. It is pure: intervals in, figures out.
package score

import (
	"fmt"
	"io"
	"sort"
	"time"

	"tidegate/reading"
)

// Truth is the ground truth of one interval, m3.
type Truth struct {
	RealUse, RealBackflow, Phantom float64
	Leak                           bool
	Backflow                       bool // a real backflow ran during the interval
	// BackflowShown: the interval's readings show water going backwards
	// that only its backflow explains (samples.IntervalTruth.BackflowShown).
	BackflowShown bool
}

// Result is the score of a run. Percentages are of the true volumes.
type Result struct {
	Meters, MeterHours     int
	RealUse, Phantom, Back float64 // true totals, m3

	PhantomRemovedPct float64
	RealUseRemovedPct float64
	VolumeAddedPct    float64
	BackflowKeptPct   float64
	BackflowAddedPct  float64 // reverse output beyond the real backflow

	LeaksPresent, LeaksFlagged int // leaks with a full night in the data; flagged within 24 h of it
	FalseLeakMeters            int // meters flagged leak that never leaked
	FalseBackflowMeters        int // meters flagged backflow that had none
	FalseBackflows             []string
	// FalseEvidentMeters: meters with a backflow event whose evidence
	// is more than a residual (flow, volume) that had no backflow.
	FalseEvidentMeters int
	// Backflow episodes (hours with a real backflow running, back to back)
	// that registered at least BackflowFlagMin, and those of them flagged
	// backflow in one of their hours or the hour after.
	BackflowsPresent, BackflowsFlagged int
	MissedBackflows                    []string
	// The same for the episodes that registered at least one step of the
	// meter's totaliser as well: a smaller one may never move the total.
	BackflowsOverStep, BackflowsOverStepFlagged int
	// The same for the episodes the readings show (Truth.BackflowShown in
	// one of their hours or the hour after): what a filter can find.
	BackflowsShown, BackflowsShownFlagged int
	// and those a backflow event with evidence beyond a residual covers
	BackflowsEvident int
	MissedLeaks      []string
	FalseLeaks       []string
	PerMeter         []Meter
}

// Meter is one meter's share of the errors, m3, to find the cases a filter gets wrong.
type Meter struct {
	ID                                 string
	RealUse, Phantom, Back             float64
	Residual, Removed, Added, BackLost float64
}

type hour struct {
	u, p, b     float64 // truth
	c, r        float64 // output
	leakTruth   bool
	leakGap     bool // some interval of the hour had no leak
	leakFlag    bool
	backFlag    bool
	backTruth   bool
	backShown   bool
	evidentFlag bool // a backflow event beyond a residual covers the hour
	seenTruth   bool
	seenOutput  bool
}

type meterScore struct {
	res, rev float64
	hours    map[int64]*hour
}

// Scorer collects truth and output intervals of any number of meters in any
// order. Times are the interval ends; loc sets the nights for leaks.
type Scorer struct {
	loc    *time.Location
	meters map[string]*meterScore
}

// New returns an empty scorer; nil loc means UTC.
func New(loc *time.Location) *Scorer {
	if loc == nil {
		loc = time.UTC
	}
	return &Scorer{loc: loc, meters: map[string]*meterScore{}}
}

func (s *Scorer) meter(meter string) *meterScore {
	m := s.meters[meter]
	if m == nil {
		m = &meterScore{hours: map[int64]*hour{}}
		s.meters[meter] = m
	}
	return m
}

func (s *Scorer) hour(meter string, t time.Time) (*meterScore, *hour) {
	m := s.meter(meter)
	// An interval ending exactly on the hour belongs to the hour before.
	k := (t.UnixNano() - 1) / int64(time.Hour)
	h := m.hours[k]
	if h == nil {
		h = &hour{}
		m.hours[k] = h
	}
	return m, h
}

// Resolution sets a meter's totaliser step, m3: differences within one step
// of the truth are not errors, they are the totaliser's.
func (s *Scorer) Resolution(meter string, res float64) {
	s.meter(meter).res = res
}

// ReverseStep widens a meter's tolerance by one step of its reverse
// totaliser in forward-equivalent m3 (the step divided by the meter's
// reverse/forward gain ratio): phantom is known only from the reverse
// total, so on a coarse totaliser one reverse step is as much as the
// filter can know. Scores are strict (forward step only) without it.
func (s *Scorer) ReverseStep(meter string, fwdEquivalent float64) {
	s.meter(meter).rev = fwdEquivalent
}

// AddTruth adds one interval's ground truth.
func (s *Scorer) AddTruth(meter string, t time.Time, tr Truth) {
	_, h := s.hour(meter, t)
	h.u += tr.RealUse
	h.p += tr.Phantom
	h.b += tr.RealBackflow
	h.leakTruth = h.leakTruth || tr.Leak
	h.leakGap = h.leakGap || !tr.Leak
	h.backTruth = h.backTruth || tr.Backflow
	h.backShown = h.backShown || tr.BackflowShown
	h.seenTruth = true
}

// AddOutput adds one interval's filter verdict.
func (s *Scorer) AddOutput(meter string, t time.Time, f reading.Filtered) {
	_, h := s.hour(meter, t)
	h.c += f.Consumption
	h.r += f.Reverse
	h.leakFlag = h.leakFlag || f.Flags&reading.FlagLeak != 0
	h.backFlag = h.backFlag || f.Flags&reading.FlagBackflow != 0
	h.seenOutput = true
}

// play is a play (backlash) operator of half-width tol: it follows x only
// when x leaves the band, so a totaliser's step-sized wobble is no error
// while a persistent difference is.
type play struct{ y, tol float64 }

func (p *play) move(x float64) (up, down float64) {
	switch {
	case x-p.y > p.tol:
		up = x - p.y - p.tol
		p.y += up
	case p.y-x > p.tol:
		down = p.y - x - p.tol
		p.y -= down
	}
	return up, down
}

// AddEvent takes the filter's events; a backflow event whose evidence is
// more than a residual beside a surge counts towards FalseEvidentMeters
// where the meter had no backflow.
func (s *Scorer) AddEvent(e reading.Event) {
	if e.Type != "backflow" || e.Attrs["evidence"] == "residual" {
		return
	}
	from, err1 := time.Parse(time.RFC3339, e.Attrs["start"])
	to, err2 := time.Parse(time.RFC3339, e.Attrs["end"])
	if err1 != nil || err2 != nil {
		return
	}
	for t := from.Truncate(time.Hour); !t.After(to); t = t.Add(time.Hour) {
		_, h := s.hour(e.Meter, t.Add(time.Nanosecond))
		h.evidentFlag = true
	}
}

// Result computes the figures.
func (s *Scorer) Result() Result {
	var res Result
	var residual, removed, added, backDown, backUp float64
	ids := make([]string, 0, len(s.meters))
	for id := range s.meters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := s.meters[id]
		keys := make([]int64, 0, len(m.hours))
		for k := range m.hours {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		if len(keys) == 0 {
			continue
		}
		res.Meters++
		tol := m.res + m.rev + 1e-6
		use, back := play{tol: tol}, play{tol: tol}
		var cu, cc, cb, cr float64
		var everLeak, everFlag, everBack, everBackFlag, everEvident bool
		pm := Meter{ID: id}
		for _, k := range keys {
			h := m.hours[k]
			res.MeterHours++
			res.RealUse += h.u
			res.Phantom += h.p
			res.Back += h.b
			cu += h.u
			cc += h.c
			cb += h.b
			cr += h.r
			up, down := use.move(cc - cu)
			ph := min(up, h.p)
			residual += ph
			added += up - ph
			removed += down
			pm.RealUse += h.u
			pm.Phantom += h.p
			pm.Back += h.b
			pm.Residual += ph
			pm.Added += up - ph
			pm.Removed += down
			up, down = back.move(cr - cb)
			backUp += up
			backDown += down
			pm.BackLost += down
			everLeak = everLeak || h.leakTruth
			everFlag = everFlag || h.leakFlag
			everBack = everBack || h.b > 0 || h.backTruth
			everBackFlag = everBackFlag || h.backFlag
			everEvident = everEvident || h.evidentFlag
		}
		res.PerMeter = append(res.PerMeter, pm)
		if everFlag && !everLeak {
			res.FalseLeakMeters++
			res.FalseLeaks = append(res.FalseLeaks, id)
		}
		if everBackFlag && !everBack {
			res.FalseBackflowMeters++
			res.FalseBackflows = append(res.FalseBackflows, id)
		}
		if everEvident && !everBack {
			res.FalseEvidentMeters++
		}
		s.backflowEpisodes(id, m, keys, &res)
		if night, ok := s.firstLeakNight(m, keys); ok {
			res.LeaksPresent++
			found := false
			for _, k := range keys {
				if k*int64(time.Hour) < night+24*int64(time.Hour) && m.hours[k].leakFlag {
					found = true
					break
				}
			}
			if found {
				res.LeaksFlagged++
			} else {
				res.MissedLeaks = append(res.MissedLeaks, id)
			}
		}
	}
	pct := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return 100 * a / b
	}
	res.PhantomRemovedPct = 100 - pct(residual, res.Phantom)
	res.RealUseRemovedPct = pct(removed, res.RealUse)
	res.VolumeAddedPct = pct(added, res.RealUse)
	res.BackflowKeptPct = 100 - pct(backDown, res.Back)
	if res.Back == 0 {
		res.BackflowKeptPct = 100
	}
	res.BackflowAddedPct = pct(backUp, res.Back)
	return res
}

// BackflowFlagMin is the registered volume from which a backflow episode
// must be flagged, m3.
const BackflowFlagMin = 0.001

// backflowEpisodes counts a meter's backflow episodes of at least
// BackflowFlagMin and those flagged.
func (s *Scorer) backflowEpisodes(id string, m *meterScore, keys []int64, res *Result) {
	for i := 0; i < len(keys); {
		if !m.hours[keys[i]].backTruth {
			i++
			continue
		}
		j, vol, flagged, shown, evident := i, 0.0, false, false, false
		for ; j < len(keys) && m.hours[keys[j]].backTruth && keys[j]-keys[i] == int64(j-i); j++ {
			vol += m.hours[keys[j]].b
			flagged = flagged || m.hours[keys[j]].backFlag
			shown = shown || m.hours[keys[j]].backShown
			evident = evident || m.hours[keys[j]].evidentFlag
		}
		if h := m.hours[keys[j-1]+1]; h != nil {
			flagged = flagged || h.backFlag
			shown = shown || h.backShown
			evident = evident || h.evidentFlag
		}
		if vol >= BackflowFlagMin {
			res.BackflowsPresent++
			over := vol >= m.res-1e-9
			if over {
				res.BackflowsOverStep++
			}
			if shown {
				res.BackflowsShown++
			}
			if evident {
				res.BackflowsEvident++
			}
			if flagged {
				res.BackflowsFlagged++
				if over {
					res.BackflowsOverStepFlagged++
				}
				if shown {
					res.BackflowsShownFlagged++
				}
			} else {
				note := ""
				if !shown {
					note = ", not shown"
				}
				res.MissedBackflows = append(res.MissedBackflows, fmt.Sprintf("%s@%s(%.1fL%s)", id,
					time.Unix(0, keys[i]*int64(time.Hour)).UTC().Format("02T15"), vol*1000, note))
			}
		}
		i = j
	}
}

// firstLeakNight finds the end (unix ns) of the first night window 01–05 h
// local that leaked throughout in truth: a leak that starts at 03:00 has
// its first night the next one.
func (s *Scorer) firstLeakNight(m *meterScore, keys []int64) (int64, bool) {
	for _, k := range keys {
		h := m.hours[k]
		if !h.leakTruth {
			continue
		}
		t := time.Unix(0, k*int64(time.Hour)).In(s.loc)
		if t.Hour() != 1 {
			continue
		}
		all := true
		for i := int64(0); i < 4; i++ {
			if x := m.hours[k+i]; x == nil || !x.leakTruth || x.leakGap {
				all = false
			}
		}
		if all {
			return (k + 4) * int64(time.Hour), true
		}
	}
	return 0, false
}

// Write prints the figures, one a line.
func (r Result) Write(w io.Writer, name string) {
	fmt.Fprintf(w, "%s: %d meters, %d meter-hours, real use %.3f m3, phantom %.3f m3, backflow %.3f m3\n",
		name, r.Meters, r.MeterHours, r.RealUse, r.Phantom, r.Back)
	fmt.Fprintf(w, "  phantom removed %.2f%%  real use removed %.3f%%  volume added %.3f%%  backflow kept %.2f%% (added %.2f%%)\n",
		r.PhantomRemovedPct, r.RealUseRemovedPct, r.VolumeAddedPct, r.BackflowKeptPct, r.BackflowAddedPct)
	fmt.Fprintf(w, "  leaks flagged %d/%d  false leak meters %d  false backflow meters %d  missed %v false %v\n",
		r.LeaksFlagged, r.LeaksPresent, r.FalseLeakMeters, r.FalseBackflowMeters, r.MissedLeaks, r.FalseLeaks)
	fmt.Fprintf(w, "  backflows ≥ %.0f L with an event on evidence beyond a residual %d/%d; false backflow meters on such evidence %d  false %v\n",
		BackflowFlagMin*1000, r.BackflowsEvident, r.BackflowsPresent, r.FalseEvidentMeters, r.FalseBackflows)
	fmt.Fprintf(w, "  backflows ≥ %.0f L flagged %d/%d (of those the readings show %d/%d, ≥ a totaliser step %d/%d)  missed %v\n",
		BackflowFlagMin*1000, r.BackflowsFlagged, r.BackflowsPresent, r.BackflowsShownFlagged, r.BackflowsShown,
		r.BackflowsOverStepFlagged, r.BackflowsOverStep, r.MissedBackflows)
}
