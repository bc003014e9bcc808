package drivers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
)

// TestCJT188Bus runs a CJ/T 188 bus of metersim meters through the
// scheduler: meters in both DI orders and clock orders read what the
// simulator holds; a garbling meter's failures are marked; a dead one goes
// offline; the daily billing read delivers the settlement-day volume as
// storage 1; a meter clock far off the gateway's sends one clock_drift event.
func TestCJT188Bus(t *testing.T) {
	sim := startSim(t, `
seed: 5
start: 2026-11-20T00:30:00Z   # the meters' clocks are days behind the gateway's
buses:
  - name: cj
    protocol: cjt188
    meters:
      - {id: a, address: "78330011223344", preamble: 2, water: {profile: flat, persons: 4, use_scale: 20}}
      - {id: b, address: "78330011223345", di_order: low-first, reply_di_order: high-first, clock_order: century-first, status_layout: mirrored, water: {profile: shop, use_scale: 20}}
      - {id: crc, address: "78330011223346", faults: {crc: 0.7}}
      - {id: dead, address: "78330011223347", faults: {dead: true}}
`)
	sink := newCollector()
	pi := sim.Ports()["cj"]
	iv := 300 * time.Millisecond
	meters := []MeterConfig{
		{ID: "a", Interval: iv, Billing: "00:05", CJT: CJTMeterConfig{Address: "78330011223344"}},
		{ID: "b", Interval: iv, CJT: CJTMeterConfig{Address: "78330011223345", DIOrder: "low-first", ClockOrder: "century-first"}},
		{ID: "crc", Interval: iv, CJT: CJTMeterConfig{Address: "78330011223346"}},
		{ID: "dead", Interval: iv, CJT: CJTMeterConfig{Address: "78330011223347"}},
	}
	bus, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity},
		Backoff: 200 * time.Millisecond, CJT: CJTBusConfig{Preamble: 3, Location: time.UTC}}, meters, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus.meters[0].billingNext = time.Now().Add(500 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	defer func() {
		if t.Failed() {
			t.Logf("a %d b %d crc bad %d events %+v stats %+v", len(sink.good("a")), len(sink.good("b")), sink.bad("crc"), sink.events, bus.Stats())
		}
	}()
	t0 := time.Now()
	waitLong(t, func() bool {
		sink.mu.Lock()
		billing := sink.kinds[reading.KindBilling]
		sink.mu.Unlock()
		return len(sink.good("a")) >= 3 && len(sink.good("b")) >= 3 && sink.bad("crc") >= 1 && sink.hasEvent("dead", "meter_offline") &&
			sink.hasEvent("a", "clock_drift") && billing >= 2
	})
	t.Logf("all seen after %v", time.Since(t0))
	cancel()
	<-done
	for _, id := range []string{"a", "b"} {
		rs := sink.good(id)
		last := rs[len(rs)-1]
		snap, _ := sim.Snapshot(id)
		net := math.Floor((snap.Forward-snap.Reverse)*100+1e-6) / 100
		if last.Forward > net+1e-9 || last.Forward < 0 || last.Has&reading.HasMeterTime == 0 || last.MeterTime.Year() != 2026 {
			t.Fatalf("%s: %+v, simulator net %.6f", id, last, net)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	drift, due := 0, 0
	for _, e := range sink.events {
		if e.Type == "clock_drift" && e.Meter == "a" {
			drift++
			if e.Attrs["bus"] != "cj" || e.Attrs["drift_s"] == "" {
				t.Errorf("drift event %+v", e)
			}
		}
	}
	for _, r := range sink.readings["a"] {
		if r.Storage == 1 {
			due++
			if r.Has&reading.HasForward == 0 || r.Quality != reading.QualityGood {
				t.Errorf("settlement-day value %+v", r)
			}
		}
	}
	if drift != 1 || due != 1 {
		t.Fatalf("%d clock_drift events and %d settlement values for a; want 1 each", drift, due)
	}
	if st := bus.Stats(); st.Timeouts == 0 || st.CRCErrors == 0 || st.Requests == 0 || st.Efficiency <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCJT188BusConfigErrors(t *testing.T) {
	for _, m := range []CJTMeterConfig{{Address: "7833001122334"}, {Address: "AAAAAAAAAAAAAA"}, {Address: "78330011223344", DIOrder: "x"}, {Address: "78330011223344", ClockOrder: "x"}} {
		if _, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, Link: link.Config{Device: "/dev/null"}}, []MeterConfig{{ID: "m", CJT: m}}, nil, newCollector(), nil); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
	two := []MeterConfig{{ID: "m", CJT: CJTMeterConfig{Address: "78330011223344"}}, {ID: "n", CJT: CJTMeterConfig{Address: "78330011223344"}}}
	if _, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, Link: link.Config{Device: "/dev/null"}}, two, nil, newCollector(), nil); err == nil {
		t.Error("one address twice accepted")
	}
	if _, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, CJT: CJTBusConfig{Preamble: 5}}, nil, nil, newCollector(), nil); err == nil {
		t.Error("preamble 5 accepted")
	}
}

// TestMixedLine: one M-Bus line at 2400 8E1 carries an EN 13757 meter and
// two CJ/T 188 meters; one bus reads all three, one request at a time.
func TestMixedLine(t *testing.T) {
	sim := startSim(t, `
seed: 9
buses:
  - name: mix
    protocol: mbus
    meters:
      - {id: kam, address: 1, model: flowiq, water: {profile: flat, persons: 4, use_scale: 20}}
      - {id: cj1, protocol: cjt188, address: "78330011223344", preamble: 2, water: {profile: flat, use_scale: 20}}
      - {id: cj2, protocol: cjt188, address: "78330011223345", di_order: low-first, water: {profile: shop, use_scale: 20}}
`)
	pi := sim.Ports()["mix"]
	if len(pi.Meters) != 3 || pi.Meters[1].Address != "78330011223344" || pi.Meters[0].Address != "1" {
		t.Fatalf("ports %+v", pi.Meters)
	}
	sink := newCollector()
	iv := 200 * time.Millisecond
	bus, err := NewBus(BusConfig{Name: "mix", Protocol: ProtoMBus, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}, CJT: CJTBusConfig{Preamble: 2},
		Timeout: time.Second}, // healthy meters must not time out on a loaded machine: the test counts failures
		[]MeterConfig{
			{ID: "kam", Address: 1, Interval: iv},
			{ID: "cj1", Protocol: ProtoCJT188, Interval: iv, CJT: CJTMeterConfig{Address: "78330011223344"}},
			{ID: "cj2", Protocol: ProtoCJT188, Interval: iv, CJT: CJTMeterConfig{Address: "78330011223345", DIOrder: "low-first"}},
		}, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	waitFor(t, func() bool {
		return len(sink.good("kam")) >= 3 && len(sink.good("cj1")) >= 3 && len(sink.good("cj2")) >= 3
	})
	cancel()
	<-done
	for _, id := range []string{"kam", "cj1", "cj2"} {
		rs := sink.good(id)
		snap, _ := sim.Snapshot(id)
		if last := rs[len(rs)-1]; last.Forward > snap.Forward+1e-9 || last.Forward < 0 {
			t.Errorf("%s: %v, simulator %v", id, last.Forward, snap.Forward)
		}
	}
	if st := bus.Stats(); st.PollsFailed > 2 {
		t.Errorf("%d failed polls on a healthy mixed line: %+v", st.PollsFailed, st)
	}
	if _, err := NewBus(BusConfig{Name: "x", Protocol: ProtoMBus, Link: link.Config{Device: "/dev/null"}}, []MeterConfig{{ID: "m", Protocol: ProtoModbus}}, nil, sink, nil); err == nil {
		t.Error("a Modbus meter accepted on an M-Bus line")
	}
}

// TestCJT188Valve: a valve command through the bus closes the simulated
// meter's valve (its flow stops), the status read back shows it closed, and
// a valve event carries the request id and the outcome. A meter without
// valve: true is refused before anything is sent.
func TestCJT188Valve(t *testing.T) {
	sim := startSim(t, `
speed: 600   # the 400 L/h leak registers 67 L a real second
buses:
  - name: cj
    protocol: cjt188
    meters:
      - {id: v, address: "78330011223344", valve: true, water: {profile: flat, persons: 4, use_scale: 30, leaks: [{rate_lh: 400}]}}
      - {id: nv, address: "78330011223345"}
`)
	pi := sim.Ports()["cj"]
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}, Timeout: time.Second},
		[]MeterConfig{
			{ID: "v", Interval: time.Hour, CJT: CJTMeterConfig{Address: "78330011223344", Valve: true}},
			{ID: "nv", Interval: time.Hour, CJT: CJTMeterConfig{Address: "78330011223345"}},
		}, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	if _, err := bus.Valve(rctx, "nv", "r-0", false); !errors.Is(err, ErrValveNotEnabled) {
		t.Fatalf("meter without valve: %v", err)
	}
	open0, _ := sim.Snapshot("v")
	time.Sleep(200 * time.Millisecond)
	if open1, _ := sim.Snapshot("v"); open1.Forward <= open0.Forward {
		t.Fatalf("the leak does not move the total while the valve is open: %v -> %v", open0.Forward, open1.Forward)
	}
	res, err := bus.Valve(rctx, "v", "r-1", false)
	if err != nil || res.Outcome != ValveDone || res.Valve != "closed" || res.Reading.Status&reading.StatusValveClosed == 0 {
		t.Fatalf("close: %+v %v", res, err)
	}
	before, _ := sim.Snapshot("v")
	time.Sleep(200 * time.Millisecond)
	if after, _ := sim.Snapshot("v"); after.Forward != before.Forward || after.Flow != 0 {
		t.Fatalf("valve closed, flow goes on: %v -> %v (flow %v)", before.Forward, after.Forward, after.Flow)
	}
	res, err = bus.Valve(rctx, "v", "r-2", true)
	if err != nil || res.Outcome != ValveDone || res.Valve != "open" {
		t.Fatalf("open: %+v %v", res, err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var evs []reading.Event
	for _, e := range sink.events {
		if e.Type == "valve" {
			evs = append(evs, e)
		}
	}
	if len(evs) != 2 || evs[0].Attrs["request"] != "r-1" || evs[0].Attrs["outcome"] != "done" || evs[0].Attrs["valve"] != "closed" || evs[1].Attrs["action"] != "open" {
		t.Fatalf("valve events %+v", evs)
	}
}

// waitLong is waitFor with room for a loaded machine: a CJ/T 188 bus at
// 2400 baud with a dead meter spends most of a second on each of its polls.
func waitLong(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestValveDeadline (issue 22): a valve command carries its own context to
// the line. A meter that answers too late makes the bus retry the write;
// once the command's deadline has passed, no further write goes out, and
// the error says the write was sent but not answered (link.ErrNoAnswer).
// A command whose deadline passed before the bus got to it is never sent
// (link.ErrNotSent). Before, the write ran on the bus's context and its
// retries went on after the command had expired.
func TestValveDeadline(t *testing.T) {
	sim := startSim(t, `
buses:
  - name: cj
    protocol: cjt188
    meters:
      - {id: v, address: "78330011223344", valve: true, faults: {late: 1, late_by: 1500ms}}
`)
	pi := sim.Ports()["cj"]
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "cj", Protocol: ProtoCJT188, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}, Timeout: 300 * time.Millisecond, Retries: 5},
		[]MeterConfig{{ID: "v", Interval: time.Hour, CJT: CJTMeterConfig{Address: "78330011223344", Valve: true}}}, nil, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus.meters[0].next = time.Now().Add(time.Hour) // no scheduled poll in the way
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitLong(t, func() bool { return bus.Stats().Open })

	// Expired before it reaches the bus: nothing goes out.
	before := sim.Bus("cj").Stats().Requests
	expired, ecancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	for i := range 5 {
		if _, err := bus.Valve(expired, "v", fmt.Sprintf("old-%d", i), false); !errors.Is(err, link.ErrNotSent) || errors.Is(err, link.ErrNoAnswer) {
			t.Fatalf("expired command: %v, want link.ErrNotSent", err)
		}
	}
	ecancel()

	// Expires while the bus retries the write: no write after the deadline.
	cctx, ccancel := context.WithTimeout(ctx, 700*time.Millisecond)
	deadline, _ := cctx.Deadline()
	_, err = bus.Valve(cctx, "v", "r-1", false)
	ccancel()
	if !errors.Is(err, link.ErrNoAnswer) || errors.Is(err, link.ErrNotSent) {
		t.Fatalf("command that expired during its retries: %v, want link.ErrNoAnswer", err)
	}
	if time.Since(deadline) > 2*time.Second {
		t.Fatalf("the command returned %v after its deadline", time.Since(deadline))
	}
	// A write begun just before the deadline is still on the wire then.
	time.Sleep(time.Until(deadline.Add(300 * time.Millisecond)))
	atDeadline := sim.Bus("cj").Stats().Requests
	time.Sleep(3 * time.Second) // 5 retries of 300 ms would have gone out by now
	after := sim.Bus("cj").Stats().Requests
	if after != atDeadline || atDeadline-before < 1 || atDeadline-before > 3 {
		t.Fatalf("requests: %d before, %d at the deadline, %d after: writes went out after the command expired", before, atDeadline, after)
	}
}
