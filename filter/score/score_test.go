package score

import (
	"math"
	"testing"
	"time"

	"tidegate/reading"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func TestPlay(t *testing.T) {
	p := play{tol: 1}
	steps := []struct{ x, up, down float64 }{{0.5, 0, 0}, {2, 1, 0}, {1.5, 0, 0}, {-1, 0, 1}, {0, 0, 0}}
	for i, s := range steps {
		up, down := p.move(s.x)
		if math.Abs(up-s.up) > 1e-12 || math.Abs(down-s.down) > 1e-12 {
			t.Errorf("step %d: move(%v) = %v, %v; want %v, %v", i, s.x, up, down, s.up, s.down)
		}
	}
}

func TestResult(t *testing.T) {
	s := New(nil)
	s.Resolution("a", 0.001)
	s.Resolution("b", 0.001)
	for h := 0; h < 30; h++ {
		at := t0.Add(time.Duration(h)*time.Hour + 30*time.Minute)
		// a: 10 L real use and 4 L phantom an hour; the filter keeps 1 L phantom
		// and removes 5 L of use in hour 5.
		s.AddTruth("a", at, Truth{RealUse: 0.010, Phantom: 0.004, Leak: h >= 1})
		c := 0.011
		if h == 5 {
			c = 0.006
		}
		s.AddOutput("a", at, reading.Filtered{Consumption: c, Flags: map[bool]reading.FilterFlags{true: reading.FlagLeak}[h == 29]})
		// b: backflow half kept, and a leak flag it never had.
		s.AddTruth("b", at, Truth{RealBackflow: 0.002})
		s.AddOutput("b", at, reading.Filtered{Reverse: 0.001, Flags: reading.FlagLeak})
	}
	r := s.Result()
	if r.Meters != 2 || r.MeterHours != 60 {
		t.Fatalf("meters %d hours %d", r.Meters, r.MeterHours)
	}
	// Phantom kept: 1 L an hour of 4, less what the tolerance and the dip absorb.
	if r.PhantomRemovedPct < 75 || r.PhantomRemovedPct > 85 {
		t.Errorf("phantom removed %.2f%%, want 75..85%%", r.PhantomRemovedPct)
	}
	if r.RealUseRemovedPct <= 0 || r.BackflowKeptPct > 52 || r.BackflowKeptPct < 48 {
		t.Errorf("use removed %.3f%%, backflow kept %.2f%%", r.RealUseRemovedPct, r.BackflowKeptPct)
	}
	// a leaks from 01:00: first full night is 01–05 on day 1, flagged only at 05:30 on day 2: too late.
	if r.LeaksPresent != 1 || r.LeaksFlagged != 0 || r.FalseLeakMeters != 1 || r.FalseLeaks[0] != "b" {
		t.Errorf("leaks %d/%d false %v", r.LeaksFlagged, r.LeaksPresent, r.FalseLeaks)
	}
}

// A 10 L totaliser whose filter output runs 15 L above the truth: one
// forward step is tolerated, so 5 L are kept phantom; with one reverse step
// (10 L / 0.5 = 20 L forward-equivalent) beside it, nothing is.
func TestReverseStep(t *testing.T) {
	for _, tt := range []struct {
		rev      float64
		residual float64 // m3
	}{{0, 0.005}, {0.020, 0}} {
		s := New(nil)
		s.Resolution("a", 0.010)
		if tt.rev > 0 {
			s.ReverseStep("a", tt.rev)
		}
		at := t0.Add(30 * time.Minute)
		s.AddTruth("a", at, Truth{RealUse: 0.010, Phantom: 0.030})
		s.AddOutput("a", at, reading.Filtered{Consumption: 0.025})
		r := s.Result()
		if got := r.PerMeter[0].Residual; math.Abs(got-tt.residual) > 1e-5 {
			t.Errorf("reverse step %v: residual %.4f m3, want %.4f", tt.rev, got, tt.residual)
		}
	}
}
