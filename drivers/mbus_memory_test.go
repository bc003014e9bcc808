package drivers

import (
	"context"
	"math"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
)

// TestMBusBackfill: two M-Bus meters of metersim (one sending its logger in
// its REQ_UD2 answer, one in the telegram after it) polled for the first
// time three simulated days after the gateway last held a daily value:
// the bus sends Dec 2, 3 and 4 from the meters' historic values (storage
// numbers with their dates), as the meters froze them; on demand it sends
// a range again.
func TestMBusBackfill(t *testing.T) {
	sim := startSim(t, `
seed: 12
speed: 21600
start: 2026-12-01T22:00:00Z
buses:
  - name: mb
    protocol: mbus
    meters:
      - {id: u, address: 3, model: ultrimis, water: {profile: flat, persons: 4, use_scale: 20, leaks: [{rate_lh: 20}]}}
      - {id: k, address: 4, model: flowiq, water: {profile: shop, use_scale: 20}}
`)
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	waitLong(t, func() bool { return sim.Now().After(day(4).Add(time.Hour)) })
	if sim.Now().After(day(4).Add(18 * time.Hour)) {
		t.Skipf("simulation at %s: the machine is too busy for this clock", sim.Now())
	}
	pi := sim.Ports()["mb"]
	sink := newCollector()
	iv := 300 * time.Millisecond
	bus, err := NewBus(BusConfig{Name: "mb", Protocol: ProtoMBus, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity},
		Timeout: time.Second, CJT: CJTBusConfig{Location: time.UTC}},
		[]MeterConfig{
			{ID: "u", Address: 3, Interval: iv, Backfill: true, BackfillFrom: day(1), Location: time.UTC},
			{ID: "k", Address: 4, Interval: iv, Backfill: true, BackfillFrom: day(1), Location: time.UTC},
		}, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitLong(t, func() bool { return len(memoryRecords(sink, "u")) >= 3 && len(memoryRecords(sink, "k")) >= 3 })
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Second)
	asked, err := bus.Backfill(bctx, "k", day(2), day(3))
	bcancel()
	if err != nil || len(asked) != 2 || !asked[0].MeterTime.Equal(day(3)) || !asked[1].MeterTime.Equal(day(2)) {
		t.Fatalf("backfill Dec 2..3 of k: %+v %v", asked, err)
	}
	for _, id := range []string{"u", "k"} {
		mm, _ := sim.MBusMeter(id)
		truth := map[time.Time]float64{}
		for _, f := range mm.DailyFreezes() {
			truth[f.Time] = f.Volume
		}
		got := memoryRecords(sink, id)
		for i, r := range got[:3] {
			want := day(2 + i)
			v, ok := truth[want]
			if !r.MeterTime.Equal(want) || !ok || math.Abs(r.Forward-v) > 1e-9 || r.Source != reading.SourceMeterMemory {
				t.Fatalf("%s: value %d %+v, want %s at %v (meter froze %+v)", id, i, r, want, v, mm.DailyFreezes())
			}
		}
		if truth[day(4)] <= truth[day(2)] && id == "u" {
			t.Fatalf("%s: no use between the freezes: %v", id, truth)
		}
	}
}

// TestMBusClockSet: an M-Bus meter 10 min behind is set once (SND_UD with
// a type F record) when the gateway's clock is synchronised.
func TestMBusClockSet(t *testing.T) {
	sim := startSim(t, `
seed: 3
buses:
  - name: mb
    protocol: mbus
    meters:
      - {id: u, address: 3, model: ultrimis, clock_offset: -10m, water: {profile: flat}}
`)
	pi := sim.Ports()["mb"]
	gw := &fakeGatewayClock{}
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "mb", Protocol: ProtoMBus, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity},
		Timeout: time.Second, GatewayClock: gw, CJT: CJTBusConfig{Location: time.UTC}},
		[]MeterConfig{{ID: "u", Address: 3, Interval: 300 * time.Millisecond, ClockSync: time.Minute, Location: time.UTC}}, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	defer func() { cancel(); <-done }()
	mm, _ := sim.MBusMeter("u")
	waitLong(t, func() bool {
		n, _ := countEvents(sink, "u", "clock_set_skipped")
		return n > 0 && len(sink.good("u")) >= 3
	})
	if mm.ClockSets() != 0 {
		t.Fatal("set from an unsynchronised gateway clock")
	}
	gw.synced.Store(true)
	waitLong(t, func() bool { n, _ := countEvents(sink, "u", "clock_set"); return n > 0 })
	polled := len(sink.good("u"))
	waitLong(t, func() bool { return len(sink.good("u")) >= polled+4 })
	n, e := countEvents(sink, "u", "clock_set")
	if n != 1 || mm.ClockSets() != 1 || e.Attrs["outcome"] != "done" {
		t.Fatalf("%d clock_set events (last %+v), %d writes", n, e, mm.ClockSets())
	}
	// The meter's clock has minutes only (type F): within a minute now.
	last := sink.good("u")[len(sink.good("u"))-1]
	if d := last.MeterTime.Sub(last.Received); d > time.Minute || d < -time.Minute {
		t.Fatalf("meter clock still %v off", d)
	}
}
