package water

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func mustNew(t testing.TB, cfg Config, seed int64) *Meter {
	t.Helper()
	m, err := New(cfg, seed, t0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Over a surge episode with no use, forward − reverse registered is only the
// reverse-gain error: (1 − gr/gf) of the forward phantom.
func TestSurgeNetIsGainErrorOnly(t *testing.T) {
	for _, gr := range []float64{0.6, 0.9, 1.0} {
		cfg := Config{Profile: ProfileVacant,
			Meter:  Metrology{ReverseGain: gr, ResolutionL: 0.001, CutoffLH: 2},
			Surges: SurgeConfig{PumpTimes: []string{"03:00"}, AmplitudeLH: 200, PeriodS: 30, Duration: Duration(20 * time.Minute)}}
		m := mustNew(t, cfg, 7)
		m.Advance(t0.Add(24 * time.Hour))
		tr := m.Truth()
		if tr.RealUse != 0 || tr.RealBackflow != 0 {
			t.Fatalf("vacant flat used water: %+v", tr)
		}
		if tr.PhantomForward < 0.005 {
			t.Fatalf("gr=%v: surge registered only %.6f m3 forward", gr, tr.PhantomForward)
		}
		s := m.Snapshot()
		want := tr.PhantomForward * (1 - gr)
		if d := s.Forward - s.Reverse; math.Abs(d-want) > 0.01*tr.PhantomForward+1e-9 {
			t.Errorf("gr=%v: forward−reverse %.6f, want %.6f (forward %.6f)", gr, d, want, s.Forward)
		}
	}
}

func TestDeterministicAndChunkIndependent(t *testing.T) {
	cfg := Config{Persons: 3, Surges: SurgeConfig{PerDay: 5}, Leaks: []Flow{{After: Duration(30 * time.Hour), RateLH: 15}}}
	a, b := mustNew(t, cfg, 42), mustNew(t, cfg, 42)
	end := t0.Add(72 * time.Hour)
	a.Advance(end)
	for ts := t0; !ts.After(end); ts = ts.Add(37 * time.Second) {
		b.Advance(ts)
	}
	b.Advance(end)
	ta, tb := a.Truth(), b.Truth()
	if math.Abs(ta.RealUse-tb.RealUse) > 1e-9 || math.Abs(ta.PhantomForward-tb.PhantomForward) > 1e-6 {
		t.Fatalf("same seed, different chunking: %+v vs %+v", ta, tb)
	}
	if ta.RealUse < 0.3 || ta.RealUse > 3 {
		t.Errorf("3 persons, 3 days used %.3f m3; want 0.3..3", ta.RealUse)
	}
	if !ta.LeakOn || math.Abs(ta.LeakVolume-0.015*42) > 1e-6 {
		t.Errorf("leak: on=%v volume %.4f, want 0.63", ta.LeakOn, ta.LeakVolume)
	}
	c := mustNew(t, cfg, 43)
	c.Advance(end)
	if c.Truth().RealUse == ta.RealUse {
		t.Error("different seeds gave the same use")
	}
}

func TestScheduledFlowsAndStatus(t *testing.T) {
	cfg := Config{Profile: ProfileVacant,
		Meter:     Metrology{ClockDriftPPM: 100, BatteryDropMV: 200},
		Backflows: []Flow{{After: Duration(time.Hour), For: Duration(30 * time.Minute), RateLH: 100}},
		Bursts:    []Flow{{After: Duration(3 * time.Hour), For: Duration(10 * time.Minute), RateLH: 3000}},
		EmptyPipe: []Window{{After: Duration(5 * time.Hour), For: Duration(time.Hour)}}}
	m := mustNew(t, cfg, 1)
	m.Advance(t0.Add(70 * time.Minute))
	if s := m.Snapshot(); s.Flow >= 0 || s.Status.Names()[0] != "reverse_flow" {
		t.Errorf("during backflow: flow %v status %v", s.Flow, s.Status.Names())
	}
	m.Advance(t0.Add(5*time.Hour + 30*time.Minute))
	s := m.Snapshot()
	if s.Status&(1<<3) == 0 {
		t.Errorf("empty pipe not flagged: %v", s.Status.Names())
	}
	tr := m.Truth()
	if math.Abs(tr.RealBackflow-0.05*0.9) > 1e-9 || math.Abs(tr.RealUse-0.5) > 1e-9 {
		t.Errorf("backflow %.4f (want 0.045), use %.4f (want 0.5)", tr.RealBackflow, tr.RealUse)
	}
	m.Advance(t0.Add(10 * 24 * time.Hour))
	s = m.Snapshot()
	if got := s.MeterClock.Sub(s.Time); got < 86*time.Second || got > 87*time.Second {
		t.Errorf("clock drift after 10 days %v, want 86.4 s", got)
	}
	if s.BatteryMV != 1600 || s.Status&(1<<4) == 0 {
		t.Errorf("battery %d mV status %v", s.BatteryMV, s.Status.Names())
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Profile: "castle"},
		{Meter: Metrology{ReverseGain: 3}},
		{Surges: SurgeConfig{PumpTimes: []string{"25:00"}}},
		{Leaks: []Flow{{RateLH: -1}}},
	} {
		if _, err := New(cfg, 1, t0); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// BenchmarkMeterDay reports simulated meter-days per second, and the cost of
// one simulated hour relative to one 1-s step loop over that hour.
func BenchmarkMeterDay(b *testing.B) {
	cfg := Config{Persons: 3, Surges: SurgeConfig{PerDay: 6}, Leaks: []Flow{{After: Duration(time.Hour), RateLH: 10}}}
	m := mustNew(b, cfg, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Advance(t0.Add(time.Duration(i+1) * 24 * time.Hour))
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/24, "µs/sim-hour")
}

// Surges cluster at night (night_share) and at pump switching times.
func TestSurgesClusterAtNight(t *testing.T) {
	m := mustNew(t, Config{Profile: ProfileVacant, Surges: SurgeConfig{PerDay: 6, PumpTimes: []string{"12:00"}}}, 5)
	var night, noon, rest float64
	prev := 0.0
	for ts := t0.Add(time.Hour); !ts.After(t0.Add(20 * 24 * time.Hour)); ts = ts.Add(time.Hour) {
		m.Advance(ts)
		p := m.Truth().PhantomForward
		switch h := ts.Add(-time.Hour).Hour(); {
		case h < 5:
			night += p - prev
		case h == 12:
			noon += p - prev
		default:
			rest += p - prev
		}
		prev = p
	}
	// 5 of 24 hours hold 70% of the random episodes; 1 hour holds every pump episode.
	if night < rest*0.9 || noon < rest/19*3 {
		t.Errorf("phantom by time of day: 00–05 h %.3f, 12 h %.3f, other 18 h %.3f m3", night, noon, rest)
	}
}

// A closed valve stops every flow (use and a leak), and the meter registers
// nothing while it is closed; opened again, water flows again.
func TestValveStopsFlow(t *testing.T) {
	cfg := Config{Profile: ProfileFlat, Persons: 4, UseScale: 3, Leaks: []Flow{{RateLH: 20}}}
	m := mustNew(t, cfg, 3)
	m.Advance(t0.Add(8 * time.Hour))
	before := m.Snapshot().Forward
	if before == 0 {
		t.Fatal("nothing registered before the valve closed")
	}
	m.SetValve(true)
	m.Advance(t0.Add(20 * time.Hour))
	s := m.Snapshot()
	if s.Forward != before || s.Flow != 0 || m.Truth().LeakVolume > 20.0/1000*8.01 {
		t.Fatalf("closed valve: forward %.4f -> %.4f, flow %.4f, leak %.4f", before, s.Forward, s.Flow, m.Truth().LeakVolume)
	}
	m.SetValve(false)
	m.Advance(t0.Add(24 * time.Hour))
	if m.Snapshot().Forward <= before {
		t.Fatal("opened valve: still nothing flows")
	}
}

// A small backflow under a surge: the oscillation registers both ways and
// nets to nothing but the gains, while the backflow's litre and a half goes
// one way and is in the truth as real backflow, running only while it runs.
func TestSmallBackflowUnderSurge(t *testing.T) {
	cfg := Config{Profile: ProfileVacant,
		Meter:     Metrology{ResolutionL: 0.1, ReverseGain: 0.6},
		Surges:    SurgeConfig{PumpTimes: []string{"01:00"}, AmplitudeLH: 200, PeriodS: 20, Duration: Duration(20 * time.Minute)},
		Backflows: []Flow{{After: Duration(time.Hour + 5*time.Minute), For: Duration(2 * time.Minute), RateLH: 75}}}
	m := mustNew(t, cfg, 1)
	m.Advance(t0.Add(time.Hour + 6*time.Minute))
	if tr := m.Truth(); !tr.BackflowOn || !tr.SurgeOn {
		t.Fatalf("backflow on %v, surge on %v: want both", tr.BackflowOn, tr.SurgeOn)
	}
	m.Advance(t0.Add(2 * time.Hour))
	tr := m.Truth()
	if tr.BackflowOn {
		t.Error("backflow still on after it ended")
	}
	if want := 0.075 * 2 / 60 * 0.6; math.Abs(tr.RealBackflow-want) > 1e-9 {
		t.Errorf("real backflow %.5f m3, want %.5f", tr.RealBackflow, want)
	}
	if tr.PhantomReverse <= 0 || tr.PhantomForward <= 0 {
		t.Errorf("surge registered forward %.5f reverse %.5f: want both", tr.PhantomForward, tr.PhantomReverse)
	}
}
