package samples

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// The registered totals must be the truth's components summed, up to the
// totaliser step: forward = real use + phantom forward, and reverse likewise.
func TestRowsAddUpToTotals(t *testing.T) {
	o := Options{Days: 2, Seed: 3, Meters: 10}
	specs := Fleet(o)
	type acc struct{ f, r, last Row }
	sums := map[string]*acc{}
	var prev time.Time
	err := Run(context.Background(), o, specs, func(r Row) error {
		if r.Time.Before(prev) {
			t.Fatalf("rows out of time order: %v after %v", r.Time, prev)
		}
		prev = r.Time
		a := sums[r.Meter]
		if a == nil {
			a = &acc{}
			sums[r.Meter] = a
		}
		if r.Forward < a.last.Forward || r.Reverse < a.last.Reverse {
			t.Fatalf("%s: totals went backwards at %v", r.Meter, r.Time)
		}
		a.f.Forward += r.Truth.RealUse + r.Truth.PhantomForward
		a.r.Reverse += r.Truth.RealBackflow + r.Truth.PhantomReverse
		a.last = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 10 {
		t.Fatalf("%d meters polled, want 10", len(sums))
	}
	for i, s := range specs {
		a := sums[s.ID]
		step := s.Water.Meter.ResolutionL / 1000
		if d := a.last.Forward - a.f.Forward; d > 1e-6 || d < -step-1e-4 {
			t.Errorf("meter %d: forward total %.4f, truth sums to %.4f (step %.4f)", i, a.last.Forward, a.f.Forward, step)
		}
		if d := a.last.Reverse - a.r.Reverse; d > 1e-6 || d < -step-1e-4 {
			t.Errorf("meter %d: reverse total %.4f, truth sums to %.4f", i, a.last.Reverse, a.r.Reverse)
		}
	}
}

func TestFleetIsVariedAndDeterministic(t *testing.T) {
	a, b := Fleet(Options{Seed: 9, Meters: 20, Days: 3}), Fleet(Options{Seed: 9, Meters: 20, Days: 3})
	intervals, vacant := map[time.Duration]bool{}, 0
	for i := range a {
		if a[i].Water.Meter.ReverseGain != b[i].Water.Meter.ReverseGain || a[i].Interval != b[i].Interval {
			t.Fatal("same seed, different fleet")
		}
		intervals[a[i].Interval] = true
		if a[i].Water.Profile == "vacant" {
			vacant++
		}
	}
	if len(intervals) < 3 || vacant < 2 {
		t.Errorf("fleet not varied: %d interval classes, %d vacant", len(intervals), vacant)
	}
}

// BenchmarkRun reports simulated samples per second with 30 meter-days a run.
func BenchmarkRun(b *testing.B) {
	o := Options{Days: 3, Seed: 1, Meters: 10, Interval: time.Minute}
	specs := Fleet(o)
	n := 0
	for i := 0; i < b.N; i++ {
		if err := Run(context.Background(), o, specs, func(Row) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/30-meter-days")
}

// SmallBackflows adds short backflows of 20–200 L/h for 1–10 min to about a
// third of the meters and leaves the rest of the fleet as it was.
func TestSmallBackflows(t *testing.T) {
	o := Options{Days: 3, Seed: 7, Meters: 60}
	plain := Fleet(o)
	o.SmallBackflows = true
	with := Fleet(o)
	n := 0
	for i := range with {
		a, b := plain[i], with[i]
		extra := b.Water.Backflows[len(a.Water.Backflows):]
		b.Water.Backflows = a.Water.Backflows
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("meter %s differs beyond its small backflows", a.ID)
		}
		if len(extra) > 0 {
			n++
		}
		for _, f := range extra {
			d := time.Duration(f.For)
			if f.RateLH < 20 || f.RateLH > 200 || d < time.Minute || d > 10*time.Minute || time.Duration(f.After) >= 3*24*time.Hour {
				t.Errorf("meter %s: backflow %+v out of range", a.ID, f)
			}
		}
	}
	if n < 10 || n > 35 {
		t.Errorf("%d of 60 meters got small backflows, want about a third", n)
	}
}
