package drivers

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
)

func memoryRecords(c *collector, id string) []reading.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []reading.Reading
	for _, r := range c.readings[id] {
		if r.Source == reading.SourceMeterMemory {
			out = append(out, r)
		}
	}
	return out
}

// TestBackfillAfterThreeDaysDown: a CJ/T 188 bus polls metersim (a
// simulated day in 4 s) and sends each day's freeze from the meter's
// memory; it is stopped for three simulated days and a new bus, started
// with the date the first one had sent up to (what the daemon keeps across
// restarts), sends the three missed days first, once each, as the meter
// froze them (the simulator's own record of its midnights), marked as from
// the meter's memory with the meter's own time, as billing records.
func TestBackfillAfterThreeDaysDown(t *testing.T) {
	sim := startSim(t, `
seed: 9
speed: 21600
start: 2026-12-01T22:00:00Z
buses:
  - name: cj
    protocol: cjt188
    meters:
      - {id: a, address: "78330011223344", water: {profile: flat, persons: 4, use_scale: 20, leaks: [{rate_lh: 20}]}}
`)
	pi := sim.Ports()["cj"]
	run := func(sink *collector, from time.Time) (bus *Bus, stop func()) {
		bus, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity},
			Timeout: time.Second, CJT: CJTBusConfig{Location: time.UTC}},
			[]MeterConfig{{ID: "a", Interval: 150 * time.Millisecond, Backfill: true, BackfillFrom: from, CJT: CJTMeterConfig{Address: "78330011223344"}}}, nil, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); bus.Run(ctx) }()
		return bus, func() { cancel(); <-done }
	}
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }

	first := newCollector()
	_, stop := run(first, time.Time{})
	waitLong(t, func() bool {
		m := memoryRecords(first, "a")
		return len(m) > 0 && !m[len(m)-1].MeterTime.Before(day(3))
	})
	stop()
	before := memoryRecords(first, "a")
	held := before[len(before)-1].MeterTime
	if held.After(day(3)) || sim.Now().After(day(3).Add(20*time.Hour)) {
		t.Skipf("the first bus stopped late (held %s, simulation at %s): the machine is too busy for this clock", held, sim.Now())
	}
	// Down for three of the meter's midnights (Dec 4, 5, 6).
	waitLong(t, func() bool { return sim.Now().After(day(6).Add(time.Hour)) })
	second := newCollector()
	bus, stop := run(second, held)
	waitLong(t, func() bool { return len(memoryRecords(second, "a")) >= 3 })
	// On demand (the downlink backfill): Dec 2..4 again, from the same memory.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	asked, err := bus.Backfill(ctx, "a", day(2), day(4))
	cancel()
	stop()
	if err != nil || len(asked) != 3 {
		t.Fatalf("backfill Dec 2..4: %d values %+v, %v", len(asked), asked, err)
	}

	truth := map[time.Time]float64{}
	cm, _ := sim.CJTMeter("a")
	for _, f := range cm.DailyFreezes() {
		truth[f.Time] = f.Volume
	}
	for i, r := range before {
		if want := day(2 + i); !r.MeterTime.Equal(want) {
			t.Fatalf("before the stop, freeze %d is of %s, want %s (all: %+v)", i, r.MeterTime, want, before)
		}
	}
	for i, r := range asked { // newest first
		if want := day(4 - i); !r.MeterTime.Equal(want) || r.Forward != truth[want] || r.Source != reading.SourceMeterMemory {
			t.Fatalf("backfill Dec 2..4, value %d: %+v, want %s at %v", i, r, want, truth[want])
		}
	}
	got := memoryRecords(second, "a")
	for i, r := range got[:3] {
		want := day(4 + i)
		v, ok := truth[want]
		if !r.MeterTime.Equal(want) || !ok || math.Abs(r.Forward-v) > 1e-9 || r.Quality != reading.QualityGood || r.Has&reading.HasMeterTime == 0 {
			t.Fatalf("after the restart, value %d: %+v, want %s at %v m3 (simulator: %v)", i, r, want, v, cm.DailyFreezes())
		}
	}
	if truth[day(6)] <= truth[day(4)] {
		t.Fatalf("no use between the freezes: %v", truth)
	}
	second.mu.Lock()
	defer second.mu.Unlock()
	if second.kinds[reading.KindBilling] < 3 {
		t.Fatalf("memory values not sent as billing records: %v", second.kinds)
	}
}

type fakeGatewayClock struct{ synced atomic.Bool }

func (f *fakeGatewayClock) Synchronized() (bool, error) { return f.synced.Load(), nil }

func countEvents(c *collector, meter, typ string) (n int, last reading.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.Meter == meter && e.Type == typ {
			n, last = n+1, e
		}
	}
	return n, last
}

// TestClockSetOnceWhenSynchronised: a meter whose clock is 10 min behind is
// left alone (one clock_set_skipped event) while the gateway's clock is not
// synchronised, then set once when it is, with one clock_set event giving
// the drift before and after; later polls leave it alone.
func TestClockSetOnceWhenSynchronised(t *testing.T) {
	sim := startSim(t, `
seed: 3
buses:
  - name: cj
    protocol: cjt188
    meters:
      - {id: a, address: "78330011223344", clock_offset: -10m, water: {profile: flat}}
      - {id: b, address: "78330011223345", clock_offset: -10m, water: {profile: flat}}
`)
	pi := sim.Ports()["cj"]
	gw := &fakeGatewayClock{}
	sink := newCollector()
	iv := 150 * time.Millisecond
	bus, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity},
		Timeout: time.Second, GatewayClock: gw, CJT: CJTBusConfig{Location: time.Local}},
		[]MeterConfig{
			{ID: "a", Interval: iv, ClockSync: time.Minute, CJT: CJTMeterConfig{Address: "78330011223344"}},
			{ID: "b", Interval: iv, CJT: CJTMeterConfig{Address: "78330011223345"}}, // not opted in
		}, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	defer func() { cancel(); <-done }()

	a, _ := sim.CJTMeter("a")
	b, _ := sim.CJTMeter("b")
	waitLong(t, func() bool {
		n, _ := countEvents(sink, "a", "clock_set_skipped")
		return n > 0 && len(sink.good("a")) >= 5
	})
	if n, _ := countEvents(sink, "a", "clock_set_skipped"); n != 1 || a.ClockSets() != 0 {
		t.Fatalf("unsynchronised gateway: %d skipped events, %d writes", n, a.ClockSets())
	}
	gw.synced.Store(true)
	waitLong(t, func() bool { n, _ := countEvents(sink, "a", "clock_set"); return n > 0 })
	polled := len(sink.good("a"))
	waitLong(t, func() bool { return len(sink.good("a")) >= polled+5 })
	n, e := countEvents(sink, "a", "clock_set")
	if n != 1 || a.ClockSets() != 1 || e.Attrs["outcome"] != "done" || e.Attrs["drift_before_s"] == "" {
		t.Fatalf("%d clock_set events (last %+v), %d writes", n, e, a.ClockSets())
	}
	var before, after float64
	if _, err := fmtSscan(e.Attrs["drift_before_s"], &before); err != nil || before > -590 || before < -610 {
		t.Fatalf("drift before %q", e.Attrs["drift_before_s"])
	}
	if _, err := fmtSscan(e.Attrs["drift_after_s"], &after); err != nil || math.Abs(after) > 2 {
		t.Fatalf("drift after %q", e.Attrs["drift_after_s"])
	}
	last := sink.good("a")[len(sink.good("a"))-1]
	if d := last.MeterTime.Sub(last.Received); d > 2*time.Second || d < -2*time.Second {
		t.Fatalf("meter clock still %v off", d)
	}
	if b.ClockSets() != 0 {
		t.Fatal("a meter without clock_sync was set")
	}
}

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }
