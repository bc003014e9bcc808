package filter

import (
	"math"
	"strconv"
	"testing"
	"time"

	"tidegate/reading"
)

// Small backflows are kept and reported as one backflow event with their
// volume: 1.2 L in 3 minutes alone, and 3 L in 3 minutes in the middle of a
// surge whose halves net to the meter's ratio (36 L back in 20 minutes, on
// a meter that learned its ratio from an earlier surge). Under a surge a
// backflow shows only beyond the ratio's uncertainty, a few per cent of the
// surge's reverse.
func TestSmallBackflowEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		surge bool
		bf    float64 // m3
		keep  float64 // share of it kept at least
		ev    string  // the evidence its event names
	}{{"alone", false, 0.0012, 0.95, "volume"}, {"under a surge", true, 0.003, 0.9, "volume"}} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(Config{InitialRatio: 0.75})
			t0 := time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)
			fwd, rev, bf := 10.0, 1.0, tc.bf
			var o Output
			for i := 0; i <= 720; i++ { // two hours of 10-s polls
				if tc.surge && (i < 120 || i >= 240 && i < 360) {
					fwd += 0.0004 // 20 minutes of oscillation: 48 L in, 36 L back
					rev += 0.0003
				}
				if i >= 280 && i < 298 {
					rev += bf / 18 // back in 3 minutes
				}
				f.PushTo(&o, reading.Reading{Meter: "m", Received: t0.Add(time.Duration(i) * 10 * time.Second), Quality: reading.QualityGood,
					Has: reading.HasForward | reading.HasReverse, Forward: fwd, Reverse: rev})
			}
			e := f.End()
			o.Readings = append(o.Readings, e.Readings...)
			o.Events = append(o.Events, e.Events...)
			var back float64
			for _, r := range o.Readings {
				back += r.Filter.Reverse
			}
			if back < tc.bf*tc.keep {
				t.Errorf("backflow kept %.2f L of %.1f", back*1000, tc.bf*1000)
			}
			events := backflowEvents(o.Events)
			if len(events) != 1 {
				t.Fatalf("backflow events %+v, want one", events)
			}
			if v, err := strconv.ParseFloat(events[0].Attrs["volume_l"], 64); err != nil || math.Abs(v-tc.bf*1000) > 0.2*tc.bf*1000 {
				t.Errorf("event volume %q L, want about %.1f", events[0].Attrs["volume_l"], tc.bf*1000)
			}
			if events[0].Attrs["evidence"] != tc.ev {
				t.Errorf("evidence %q, want %q", events[0].Attrs["evidence"], tc.ev)
			}
		})
	}
}

// A backflow beside a steady leak, polled every 15 min on a 1 L
// totaliser: 9 L back in one poll whose forward the backflow cut to 4 L.
// The polls around it read the leak's steady flow, so no oscillation was
// under way: the leak's forward in this poll and the next is no surge's
// half and must not pair the backflow away.
func TestBackflowBesideALeak(t *testing.T) {
	f := New(Config{})
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	const leak = 0.0262 // m3/h
	var o Output
	acc, rev := 0.0, 2.0
	for i := 0; i <= 6*4; i++ { // six hours of 15-min polls
		if i > 0 {
			acc += leak / 4
		}
		if i == 12 {
			acc -= 0.0025 // the backflow cut the forward of its poll
			rev += 0.009
		}
		fwd := 100 + math.Floor(acc*1000+1e-9)/1000
		f.PushTo(&o, reading.Reading{Meter: "m", Received: t0.Add(time.Duration(i) * 15 * time.Minute), Quality: reading.QualityGood,
			Has: reading.HasForward | reading.HasReverse | reading.HasFlow, Forward: fwd, Reverse: rev, Flow: leak})
	}
	e := f.End()
	o.Readings = append(o.Readings, e.Readings...)
	o.Events = append(o.Events, e.Events...)
	var back, cons float64
	flagged := false
	for _, r := range o.Readings {
		back += r.Filter.Reverse
		cons += r.Filter.Consumption
		flagged = flagged || r.Filter.Flags&reading.FlagBackflow != 0
	}
	if back < 0.009*0.8 || !flagged {
		t.Errorf("backflow kept %.1f L of 9, flagged %v", back*1000, flagged)
	}
	if want := 6*leak - 0.0025; math.Abs(cons-want) > 0.002 {
		t.Errorf("consumption %.1f L, want the leak's %.1f L", cons*1000, want*1000)
	}
}
