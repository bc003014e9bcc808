package drivers

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
)

// TestSimulatedHour is issue 4's acceptance run: two Modbus buses and one
// M-Bus bus of metersim meters through ptys, faults on (dead meters, CRC
// errors, late answers, exceptions and wrong addresses, truncated and
// missing telegrams, noise on the line), for a simulated hour. Every good
// reading on the way is never ahead of the simulator; then the simulation
// clock stops and every healthy meter's reading must equal the simulator's
// registered totals, to the precision of its registers. Faulty meters show
// as marked readings and never hold up their bus.
func TestSimulatedHour(t *testing.T) {
	sim := startSim(t, `
seed: 11
speed: 600
start: 2026-11-23T07:00:00Z   # a morning hour: real use on the flats
profiles: profiles
buses:
  - name: rtu1
    protocol: modbus
    baud: 38400
    turnaround: 3ms
    faults: {noise_every: 1s}
    meters:
      - {id: a1, address: 1, profile: dynaflox-ultrad, water: {profile: flat, persons: 4}}
      - {id: a2, address: 2, profile: tuf2000m, water: {profile: vacant, surges: {per_day: 100}}}
      - {id: a3, address: 3, profile: arad-octave, water: {profile: shop}}
      - {id: adead, address: 4, profile: tuf2000m, faults: {dead: true}}
  - name: rtu2
    protocol: modbus
    baud: 19200
    turnaround: 5ms
    meters:
      - {id: b1, address: 1, profile: dynaflox-ultrad, water: {profile: flat, leaks: [{rate_lh: 15}]}}
      - {id: b2, address: 2, profile: dynaflox-ultrad, water: {profile: factory}}
      - {id: bcrc, address: 3, profile: dynaflox-ultrad, faults: {crc: 0.5}}
      - {id: blate, address: 4, profile: dynaflox-ultrad, faults: {late: 0.6, late_by: 800ms}}
      - {id: bexc, address: 5, profile: tuf2000m, faults: {exception: 0.3, wrong_address: 0.1}}
  - name: mb
    protocol: mbus
    baud: 9600
    turnaround: 10ms
    meters:
      - {id: c1, address: 3, model: flowiq, secondary: "12345611", water: {profile: flat, persons: 3}}
      - {id: c2, address: 7, model: ultrimis, secondary: "12345612", water: {profile: flat}}
      - {id: cdead, address: 9, model: flowiq, secondary: "12345619", faults: {dead: true}}
      - {id: ctrunc, address: 11, model: ultrimis, secondary: "12345613", faults: {truncated: 0.6}}
      - {id: cquiet, address: 12, model: flowiq, secondary: "12345614", faults: {no_answer: 0.5}}
`)
	profiles := loadProfiles(t)
	ports := sim.Ports()
	type busDef struct {
		name, proto string
		baud        int
		meters      []MeterConfig
	}
	defs := []busDef{
		{"rtu1", ProtoModbus, 38400, []MeterConfig{{ID: "a1", Address: 1, Profile: "dynaflox-ultrad"}, {ID: "a2", Address: 2, Profile: "tuf2000m"}, {ID: "a3", Address: 3, Profile: "arad-octave"}, {ID: "adead", Address: 4, Profile: "tuf2000m"}}},
		{"rtu2", ProtoModbus, 19200, []MeterConfig{{ID: "b1", Address: 1, Profile: "dynaflox-ultrad"}, {ID: "b2", Address: 2, Profile: "dynaflox-ultrad"}, {ID: "bcrc", Address: 3, Profile: "dynaflox-ultrad"}, {ID: "blate", Address: 4, Profile: "dynaflox-ultrad"}, {ID: "bexc", Address: 5, Profile: "tuf2000m"}}},
		{"mb", ProtoMBus, 9600, []MeterConfig{{ID: "c1", Address: 3}, {ID: "c2", Secondary: "12345612"}, {ID: "cdead", Address: 9}, {ID: "ctrunc", Address: 11}, {ID: "cquiet", Address: 12}}},
	}
	sink := newCollector()
	sink.sim = sim
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var buses []*Bus
	for _, d := range defs {
		for i := range d.meters {
			d.meters[i].Interval = 200 * time.Millisecond // 2 simulated minutes at 600x
		}
		lc := link.Config{Device: ports[d.name].Device, Baud: d.baud}
		if d.proto == ProtoMBus {
			lc.Parity = "E"
		}
		b, err := NewBus(BusConfig{Name: d.name, Protocol: d.proto, Link: lc, Backoff: time.Second}, d.meters, profiles, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		buses = append(buses, b)
		wg.Add(1)
		go func() { defer wg.Done(); b.Run(ctx) }()
	}
	healthy := map[string]*Bus{"a1": buses[0], "a2": buses[0], "a3": buses[0], "b1": buses[1], "b2": buses[1], "c1": buses[2], "c2": buses[2]}
	// At least one simulated hour (6 s), then until what the test checks
	// below has happened: a loaded machine gets fewer polls into the hour,
	// and the test is about what the buses did, not how fast.
	seen := func() bool {
		for id := range healthy {
			if len(sink.good(id)) < 6 {
				return false
			}
		}
		for _, id := range []string{"adead", "cdead"} {
			if !sink.hasEvent(id, "meter_offline") {
				return false
			}
		}
		for _, id := range []string{"bcrc", "blate", "bexc", "ctrunc", "cquiet"} {
			if sink.bad(id) == 0 {
				return false
			}
		}
		return true
	}
	for start := time.Now(); time.Since(start) < 6*time.Second || !seen() && time.Since(start) < 90*time.Second; {
		time.Sleep(100 * time.Millisecond)
	}
	sim.Freeze()
	for id, b := range healthy {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		var r reading.Reading
		var err error
		for try := 0; try < 3; try++ { // noise on rtu1 may spoil one answer
			if r, err = b.ReadNow(rctx, id); err == nil {
				break
			}
		}
		rcancel()
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		snap, _ := sim.Snapshot(id)
		// Registers carry mL (Dynaflox), a float32 fraction (TUF) or a
		// double (Arad); M-Bus telegrams whole litres as the totaliser has.
		if math.Abs(r.Forward-snap.Forward) > 1e-6 || math.Abs(r.Reverse-snap.Reverse) > 1e-6 {
			t.Errorf("%s: read forward %.6f reverse %.6f, simulator %.6f %.6f", id, r.Forward, r.Reverse, snap.Forward, snap.Reverse)
		}
		if (id == "a1" || id == "b1" || id == "c1") && snap.Forward == 0 {
			t.Errorf("%s: no volume in a morning hour: the comparison proves nothing", id)
		}
		// Three of five M-Bus meters fail (dead, truncated, silent): their
		// timeouts take wire time, yet the healthy ones keep being read.
		if len(sink.good(id)) < 6 {
			t.Errorf("%s: only %d good scheduled readings", id, len(sink.good(id)))
		}
	}
	cancel()
	wg.Wait()
	for _, id := range []string{"adead", "cdead"} {
		if !sink.hasEvent(id, "meter_offline") {
			t.Errorf("%s never marked offline", id)
		}
	}
	for _, id := range []string{"bcrc", "blate", "bexc", "ctrunc", "cquiet"} {
		if sink.bad(id) == 0 {
			t.Errorf("%s: faults never surfaced as marked readings", id)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for id := range healthy {
		// Never ahead of the meter, and never behind what it showed
		// before the poll was sent (its previous delivery): exact bounds
		// that hold however loaded the machine, where a margin in litres
		// for the time between answer and check did not (at 600×, 100 ms
		// late is a simulated minute: a shower's 10–20 L).
		for i, d := range sink.diff[id] {
			if d > 1e-6 {
				t.Errorf("%s: reading %d is %.6f m3 ahead of the simulator", id, i, d)
				break
			}
		}
		for i, d := range sink.since[id] {
			if d < -1e-6 {
				t.Errorf("%s: reading %d is %.6f m3 behind what the meter showed before it was polled", id, i, -d)
				break
			}
		}
		if len(sink.since[id]) == 0 {
			t.Errorf("%s: no reading to bound from below", id)
		}
	}
}
