package drivers

import (
	"context"
	"math"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
)

// TestMBusBus runs an M-Bus bus of metersim meters through the scheduler:
// healthy meters (by primary and by secondary address) read what the
// simulator holds, a garbling meter's failures are marked and counted, a
// dead meter goes offline, and nobody holds up the others.
func TestMBusBus(t *testing.T) {
	sim := startSim(t, `
seed: 5
buses:
  - name: m
    protocol: mbus
    baud: 9600
    meters:
      - {id: kam, address: 1, model: flowiq, secondary: "11223344", water: {profile: flat, persons: 4, use_scale: 20}}
      - {id: apa, address: 2, model: ultrimis, water: {profile: shop, use_scale: 20}}
      - {id: crc, address: 3, model: ultrimis, faults: {crc: 0.7}}
      - {id: dead, address: 4, model: flowiq, faults: {dead: true}}
`)
	sink := newCollector()
	pi := sim.Ports()["m"]
	meters := []MeterConfig{
		{ID: "kam", Secondary: "11223344", Interval: 300 * time.Millisecond},
		{ID: "apa", Address: 2, Interval: 300 * time.Millisecond},
		{ID: "crc", Address: 3, Interval: 300 * time.Millisecond},
		{ID: "dead", Address: 4, Interval: 300 * time.Millisecond},
	}
	bus, err := NewBus(BusConfig{Name: "m", Protocol: ProtoMBus, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}, Backoff: 200 * time.Millisecond},
		meters, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	defer func() {
		if t.Failed() {
			t.Logf("kam %d apa %d crc bad %d dead offline %v stats %+v", len(sink.good("kam")), len(sink.good("apa")), sink.bad("crc"), sink.hasEvent("dead", "meter_offline"), bus.Stats())
		}
	}()
	waitFor(t, func() bool {
		return len(sink.good("kam")) >= 3 && len(sink.good("apa")) >= 3 && sink.bad("crc") >= 1 && sink.hasEvent("dead", "meter_offline")
	})
	cancel()
	<-done
	for _, id := range []string{"kam", "apa"} {
		rs := sink.good(id)
		last := rs[len(rs)-1]
		snap, _ := sim.Snapshot(id)
		// Whole litres of a total that only grows: never ahead of the simulator.
		if last.Forward > math.Round(snap.Forward*1000)/1000+1e-9 || last.Forward < 0 || last.Quality != reading.QualityGood {
			t.Fatalf("%s: %+v, simulator forward %.6f", id, last, snap.Forward)
		}
	}
	// Efficiency is the share of time the line was in a read: an M-Bus bus
	// polling four meters back to back is busy most of the time, not 0.
	if st := bus.Stats(); st.Timeouts == 0 || st.Requests == 0 || st.BusyNanos == 0 || st.Efficiency <= 0.05 || st.Efficiency > 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestMBusBillingDueDate: the daily billing read of an M-Bus meter that
// keeps a due-date value (storage 1) delivers two billing records: the
// current totals, and the value the meter froze at its due date, marked
// Storage 1 with that date as meter time. Interval polls deliver neither.
func TestMBusBillingDueDate(t *testing.T) {
	sim := startSim(t, `
seed: 5
start: 2026-11-23T00:30:00Z   # half an hour after the meter's midnight: a due date to report
buses:
  - {name: m, protocol: mbus, baud: 9600, meters: [{id: kam, address: 1, model: flowiq, water: {profile: flat, persons: 4, use_scale: 20}}]}
`)
	sink := newCollector()
	pi := sim.Ports()["m"]
	bus, err := NewBus(BusConfig{Name: "m", Protocol: ProtoMBus, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}},
		[]MeterConfig{{ID: "kam", Address: 1, Interval: 200 * time.Millisecond, Billing: "00:05"}}, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The billing read falls due in a moment instead of at 00:05 tomorrow.
	bus.meters[0].billingNext = time.Now().Add(500 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	waitFor(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.kinds[reading.KindBilling] >= 2 && sink.kinds[reading.KindReading] >= 3
	})
	cancel()
	<-done
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var due, current []reading.Reading
	for _, r := range sink.readings["kam"] {
		if r.Storage == 1 {
			due = append(due, r)
		} else if r.Quality == reading.QualityGood {
			current = append(current, r)
		}
	}
	if sink.kinds[reading.KindBilling] != 2 || len(due) != 1 {
		t.Fatalf("%d billing records, %d due-date values; want 2 and 1", sink.kinds[reading.KindBilling], len(due))
	}
	d := due[0]
	if d.Has&reading.HasForward == 0 || d.Has&reading.HasMeterTime == 0 || d.MeterTime.IsZero() || d.Quality != reading.QualityGood {
		t.Fatalf("due-date value: %+v", d)
	}
	if last := current[len(current)-1]; d.Forward > last.Forward || !d.MeterTime.Before(last.Received) {
		t.Errorf("due-date value %.3f m3 at %v is not behind the current %.3f m3 at %v", d.Forward, d.MeterTime, last.Forward, last.Received)
	}
}
