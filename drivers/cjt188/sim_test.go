package cjt188

import (
	"context"
	"errors"
	"testing"
	"time"

	"tidegate/drivers/link"
	p "tidegate/protocol/cjt188"
	"tidegate/reading"
	"tidegate/simulator"
)

func startSim(t *testing.T, text string) *simulator.Sim {
	t.Helper()
	cfg, err := simulator.ParseConfig("../../configs/sim/test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s, err := simulator.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestMasterThroughPTY polls metersim's CJ/T 188 meters through a real pty
// with go.bug.st/serial at 2400 8E1, and through its TCP converter.
func TestMasterThroughPTY(t *testing.T) {
	s := startSim(t, `
seed: 11
speed: 600   # cj-1's 400 L/h leak registers 67 L a real second
buses:
  - name: cj
    protocol: cjt188
    tcp: 127.0.0.1:0
    meters:
      - {id: cj-1, address: "78330011223344", preamble: 2, valve: true, water: {profile: flat, persons: 4, use_scale: 5, leaks: [{rate_lh: 400}]}}
      - {id: cj-2, address: "78330011223345", di_order: low-first, reply_di_order: high-first, clock_order: century-first, water: {profile: vacant}}
      - {id: cj-3, address: "78330011223346", faults: {dead: true}}
`)
	pi := s.Ports()["cj"]
	for _, via := range []link.Config{{Device: pi.Device, Baud: 2400, Parity: "E"}, {TCP: pi.TCP, Baud: 2400, Parity: "E"}} {
		// A second to answer: metersim must not miss the default on a loaded machine.
		c, err := Open(via, Options{Preamble: 4, Timeout: time.Second}, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, m := range []PollMeter{
			{Meter: Meter{ID: "cj-1", Address: mustAddr("78330011223344")}},
			{Meter: Meter{ID: "cj-2", Address: mustAddr("78330011223345"), Order: p.LowFirst, Clock: p.ClockCenturyFirst}},
		} {
			start := time.Now()
			res, err := c.Poll(ctx, m, false)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%s via %+v: %v", m.ID, via, err)
			}
			snap, _ := s.Snapshot(m.ID)
			net := snap.Forward - snap.Reverse
			if r := res.Reading; r.Forward > net+0.011 || net-r.Forward > 0.2 || r.Has&reading.HasMeterTime == 0 {
				t.Errorf("%s: read %v, simulator net %v, has %b", m.ID, r.Forward, net, r.Has)
			}
			// 2400 8E1: the request (4 FE + 16) and the answer (35 + preamble) take their wire time.
			if wire := time.Duration((20+35)*11) * time.Second / 2400; took < wire {
				t.Errorf("%s: answered in %v, faster than the wire's %v", m.ID, took, wire)
			}
		}
		_, err = c.Poll(ctx, PollMeter{Meter: Meter{ID: "cj-3", Address: mustAddr("78330011223346")}}, false)
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("dead meter: %v", err)
		}
		c.Close()
	}

	// The valve through the pty stops the simulated flow.
	c, err := Open(link.Config{Device: pi.Device, Baud: 2400, Parity: "E"}, Options{Timeout: time.Second}, time.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, ok, err := c.Valve(context.Background(), Meter{ID: "cj-1", Address: mustAddr("78330011223344")}, false); err != nil || !ok || st.Valve(p.CommonLayout) != p.ValveStateClosed {
		t.Fatalf("valve: %v %v %v", st, ok, err)
	}
	before, _ := s.Snapshot("cj-1")
	time.Sleep(200 * time.Millisecond)
	if after, _ := s.Snapshot("cj-1"); after.Forward != before.Forward || after.Flow != 0 {
		t.Fatalf("valve closed but the meter still registers: %v -> %v", before.Forward, after.Forward)
	}
}
