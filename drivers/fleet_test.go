package drivers

import (
	"context"
	"sync"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
	"tidegate/simulator"
)

// fleetSim: two Modbus buses and one M-Bus bus, faults on, one simulated
// hour in ten real seconds (speed 360).
const fleetSim = `
seed: 11
speed: 360
profiles: profiles
buses:
  - name: rtu1
    protocol: modbus
    baud: 19200
    faults: {noise_every: 2s}
    meters:
      - {id: r1-ok1, address: 1, profile: tuf2000m, water: {profile: flat, persons: 3}}
      - {id: r1-ok2, address: 2, profile: dynaflox-ultrad, water: {profile: shop, persons: 4}}
      - {id: r1-crc, address: 3, profile: tuf2000m, faults: {crc: 0.6}}
      - {id: r1-dead, address: 4, profile: tuf2000m, faults: {dead: true}}
  - name: rtu2
    protocol: modbus
    baud: 9600
    meters:
      - {id: r2-ok1, address: 1, profile: arad-octave, water: {profile: flat, persons: 2}}
      - {id: r2-ok2, address: 2, profile: tuf2000m, water: {profile: factory, persons: 10}}
      - {id: r2-late, address: 3, profile: dynaflox-ultrad, faults: {late: 0.6, late_by: 800ms}}
      - {id: r2-exc, address: 4, profile: tuf2000m, faults: {exception: 0.3, wrong_address: 0.1}}
  - name: mb
    protocol: mbus
    baud: 9600
    meters:
      - {id: mb-ok1, address: 1, model: flowiq, water: {profile: flat, persons: 4}}
      - {id: mb-ok2, address: 2, model: ultrimis, secondary: "70707070", water: {profile: flat, persons: 1}}
      - {id: mb-trunc, address: 3, model: ultrimis, faults: {truncated: 0.6}}
      - {id: mb-quiet, address: 4, model: flowiq, faults: {no_answer: 0.5}}
`

// truthSink keeps every good reading beside the simulator's state taken the
// moment the reading arrives.
type truthSink struct {
	sim    *simulator.Sim
	mu     sync.Mutex
	good   map[string][]float64 // reading forward minus simulator forward
	bad    map[string]int
	events []reading.Event
}

func (s *truthSink) Reading(r reading.Reading, _ reading.Kind) {
	snap, _ := s.sim.Snapshot(r.Meter)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Quality != reading.QualityGood {
		s.bad[r.Meter]++
		return
	}
	s.good[r.Meter] = append(s.good[r.Meter], r.Forward-snap.Forward)
}

func (s *truthSink) Event(e reading.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

// TestFleetHour: every healthy meter on three parallel buses reads the
// simulator's totals (to the meter's resolution: M-Bus whole litres, plus
// what flows in the few simulated seconds between the answer and the
// check), faulty meters are marked, and no bus is held up by another.
func TestFleetHour(t *testing.T) {
	sim := startSim(t, fleetSim)
	sink := &truthSink{sim: sim, good: map[string][]float64{}, bad: map[string]int{}}
	profiles := loadProfiles(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, pi := range sim.Ports() {
		proto := ProtoModbus
		if pi.Protocol == "mbus" {
			proto = ProtoMBus
		}
		var meters []MeterConfig
		for i, id := range pi.Meters {
			m := MeterConfig{ID: id, Address: i + 1, Interval: 400 * time.Millisecond,
				Profile: map[string]string{"r1-ok2": "dynaflox-ultrad", "r2-ok1": "arad-octave", "r2-late": "dynaflox-ultrad"}[id]}
			if proto == ProtoModbus && m.Profile == "" {
				m.Profile = "tuf2000m"
			}
			if id == "mb-ok2" {
				m.Address, m.Secondary = 0, "70707070"
			}
			meters = append(meters, m)
		}
		bus, err := NewBus(BusConfig{Name: name, Protocol: proto, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity},
			Backoff: 500 * time.Millisecond}, meters, profiles, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); bus.Run(ctx) }()
	}
	time.Sleep(10 * time.Second) // one simulated hour
	cancel()
	wg.Wait()

	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, id := range []string{"r1-ok1", "r1-ok2", "r2-ok1", "r2-ok2", "mb-ok1", "mb-ok2"} {
		diffs := sink.good[id]
		if len(diffs) < 5 {
			t.Errorf("%s: %d good readings in a simulated hour, want >= 5", id, len(diffs))
		}
		for i, d := range diffs {
			// Never ahead of the meter; behind by at most a litre of
			// rounding plus a few simulated seconds of flow.
			if d > 1e-6 || d < -0.003 {
				t.Errorf("%s: reading %d differs from the simulator by %.6f m3", id, i, d)
				break
			}
		}
	}
	for _, id := range []string{"r1-crc", "r1-dead", "r2-late", "r2-exc", "mb-trunc", "mb-quiet"} {
		if sink.bad[id] == 0 {
			t.Errorf("%s: faults never surfaced as marked readings", id)
		}
	}
	offline := false
	for _, e := range sink.events {
		offline = offline || e.Meter == "r1-dead" && e.Type == "meter_offline"
	}
	if !offline {
		t.Error("dead meter never went offline")
	}
}
