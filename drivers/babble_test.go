package drivers

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
	"tidegate/reading"
)

// babbleCase is one protocol's meters for the babble tests.
type babbleCase struct {
	proto    string
	sim      string // the meter's simulator entry
	meter    MeterConfig
	profiles bool
}

var babbleCases = map[string]babbleCase{
	"mbus":   {proto: ProtoMBus, sim: `{id: %s, address: 1, model: flowiq, secondary: "11223344"}`, meter: MeterConfig{Secondary: "11223344"}},
	"cjt188": {proto: ProtoCJT188, sim: `{id: %s, address: "78330011223344"}`, meter: MeterConfig{CJT: CJTMeterConfig{Address: "78330011223344"}}},
	"modbus": {proto: ProtoModbus, sim: `{id: %s, address: 1, profile: tuf2000m}`, meter: MeterConfig{Address: 1, Profile: "tuf2000m"}, profiles: true},
}

// TestBabblingLine (issue 22): a rogue device streams bytes on one bus (300
// B/s on a pty, 10 MB/s through a TCP converter), on each protocol in turn.
// The babbling bus reports line_noise with the rate and a sample, its meter
// goes offline with that reason, a read of it answers at once with the
// line's fault, the healthy bus beside it keeps its schedule, memory stays
// flat, and both buses stop within 2 s of being told to. Before, M-Bus
// grew without bound and froze, CJ/T 188 kept every byte, and a read said
// "busy" after its whole timeout.
func TestBabblingLine(t *testing.T) {
	for _, proto := range []string{"mbus", "cjt188", "modbus"} {
		for _, how := range []string{"pty", "tcp"} {
			t.Run(proto+"/"+how, func(t *testing.T) { testBabble(t, babbleCases[proto], proto, how) })
		}
	}
}

func testBabble(t *testing.T, bc babbleCase, proto, how string) {
	port, rate := "", 300
	if how == "tcp" {
		port, rate = "pty: false\n    tcp: 127.0.0.1:0\n    ", 10<<20
	}
	sim := startSim(t, fmt.Sprintf(`
seed: 1
profiles: profiles
buses:
  - name: bab
    protocol: %[1]s
    baud: 9600
    %[2]sfaults: {babble: {rate: %[3]d}}
    meters: [%[4]s]
  - name: ok
    protocol: %[1]s
    baud: 9600
    meters: [%[5]s]
`, proto, port, rate, fmt.Sprintf(bc.sim, "noisy"), fmt.Sprintf(bc.sim, "good")))
	var profiles map[string]*pmodbus.Profile
	if bc.profiles {
		profiles = loadProfiles(t)
	}
	sink := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	iv := 500 * time.Millisecond
	var buses []*Bus
	done := make(chan struct{}, 2)
	for _, name := range []string{"bab", "ok"} {
		pi := sim.Ports()[name]
		m := bc.meter
		m.ID, m.Interval = map[string]string{"bab": "noisy", "ok": "good"}[name], iv
		lc := link.Config{Device: pi.Device, TCP: pi.TCP, Baud: pi.Baud, Parity: pi.Parity}
		b, err := NewBus(BusConfig{Name: name, Protocol: bc.proto, Link: lc, Backoff: 200 * time.Millisecond}, []MeterConfig{m}, profiles, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		buses = append(buses, b)
		go func() { b.Run(ctx); done <- struct{}{} }()
	}
	defer func() {
		if t.Failed() {
			sink.mu.Lock()
			t.Logf("events %+v", sink.events)
			sink.mu.Unlock()
			t.Logf("bab %+v ok %+v", buses[0].Stats(), buses[1].Stats())
		}
	}()
	var heap0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap0)

	noise := func() (reading.Event, bool) {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, e := range sink.events {
			if e.Type == "line_noise" && e.Attrs["bus"] == "bab" {
				return e, true
			}
		}
		return reading.Event{}, false
	}
	waitLong(t, func() bool { _, ok := noise(); return ok && sink.hasEvent("noisy", "meter_offline") })
	e, _ := noise()
	if e.Attrs["bytes_per_s"] == "" || e.Attrs["sample"] == "" || e.Attrs["after"] == "" || !strings.Contains(e.Message, "line noise") {
		t.Fatalf("line_noise event without its facts: %+v", e)
	}
	sink.mu.Lock()
	for _, e := range sink.events {
		if e.Type == "meter_offline" && e.Meter == "noisy" && e.Attrs["reason"] != "line_noise" {
			t.Errorf("meter offline for another reason first: %+v", e)
		}
		if e.Attrs["bus"] == "ok" && e.Type != "meter_online" {
			t.Errorf("the healthy bus had an event: %+v", e)
		}
	}
	sink.mu.Unlock()

	// A read of the babbling bus's meter answers with the line's fault,
	// well within its 10 s.
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	t0 := time.Now()
	_, err := buses[0].ReadNow(rctx, "noisy")
	rcancel()
	if err == nil || !strings.Contains(err.Error(), "line noise") || time.Since(t0) > 9*time.Second {
		t.Fatalf("read of the babbling bus's meter after %v: %v", time.Since(t0), err)
	}

	// The healthy bus keeps polling: over 3 s, a poll every 500 ms (an
	// M-Bus one, a selection and a chain of telegrams at 9600 baud, takes
	// a good part of that on a loaded machine), never frozen.
	before := len(sink.good("good"))
	time.Sleep(3 * time.Second)
	if got := len(sink.good("good")) - before; got < 2 {
		t.Fatalf("healthy bus: %d good polls in 3 s at a 500 ms interval", got)
	}
	var heap1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap1)
	if grown := int64(heap1.HeapInuse) - int64(heap0.HeapInuse); grown > 8<<20 {
		t.Fatalf("heap grew by %d bytes during the babble", grown)
	}

	// Stop always stops: both buses within 2 s plus a frame.
	cancel()
	t1 := time.Now()
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("a bus still running 5 s after its stop")
		}
	}
	if d := time.Since(t1); d > 2500*time.Millisecond {
		t.Fatalf("buses took %v to stop", d)
	}
	if st := buses[0].Stats(); st.Reopens == 0 {
		t.Fatalf("babbling bus never reopened: %+v", st)
	}
}

// TestStuckMeterDiagnosed (issue 22): a meter whose transmitter sticks
// (metersim's stuck fault) jams its bus: its neighbour's requests meet its
// answer over and over, and the bus reports line_noise rather than
// blaming the neighbour, on each protocol.
func TestStuckMeterDiagnosed(t *testing.T) {
	second := map[string]string{
		"mbus":   `{id: n, address: 2, model: flowiq}`,
		"cjt188": `{id: n, address: "78330011223345"}`,
		"modbus": `{id: n, address: 2, profile: tuf2000m}`,
	}
	for _, proto := range []string{"mbus", "cjt188", "modbus"} {
		t.Run(proto, func(t *testing.T) {
			bc := babbleCases[proto]
			stuck := strings.Replace(fmt.Sprintf(bc.sim, "s"), "}", ", faults: {stuck: 1, stuck_for: 60s}}", 1)
			if proto == "mbus" {
				stuck = `{id: s, address: 1, model: flowiq, faults: {stuck: 1, stuck_for: 60s}}`
			}
			sim := startSim(t, fmt.Sprintf(`
profiles: profiles
buses:
  - {name: st, protocol: %s, baud: 9600, meters: [%s, %s]}
`, proto, stuck, second[proto]))
			var profiles map[string]*pmodbus.Profile
			if bc.profiles {
				profiles = loadProfiles(t)
			}
			m1 := bc.meter
			m1.ID, m1.Interval = "s", 300*time.Millisecond
			if proto == "mbus" {
				m1.Secondary, m1.Address = "", 1
			}
			m2 := m1
			m2.ID = "n"
			switch proto {
			case "cjt188":
				m2.CJT.Address = "78330011223345"
			default:
				m2.Address = 2
			}
			if proto == "modbus" {
				m2.Profile = "tuf2000m"
			}
			pi := sim.Ports()["st"]
			sink := newCollector()
			b, err := NewBus(BusConfig{Name: "st", Protocol: bc.proto, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}, Backoff: 200 * time.Millisecond},
				[]MeterConfig{m1, m2}, profiles, sink, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); b.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitLong(t, func() bool {
				sink.mu.Lock()
				defer sink.mu.Unlock()
				for _, e := range sink.events {
					if e.Type == "line_noise" {
						return true
					}
				}
				return false
			})
		})
	}
}

// TestStuckMeterAloneDiagnosed: a stuck meter that is the only one on its
// bus answers every poll, but its answer does not end: bytes go on arriving
// after a complete, valid answer, within the silence the protocol demands
// after a frame. That is the line's fault (line_noise), on each protocol,
// not a good reading.
func TestStuckMeterAloneDiagnosed(t *testing.T) {
	for _, proto := range []string{"mbus", "cjt188", "modbus"} {
		t.Run(proto, func(t *testing.T) {
			bc := babbleCases[proto]
			if proto == "modbus" {
				// One request per poll (the 17 registers in one read): every
				// poll's request is the same, so the repeats answer it.
				bc.sim = `{id: %s, address: 1, profile: bench17}`
				bc.meter.Profile = "bench17"
			}
			stuck := strings.Replace(fmt.Sprintf(bc.sim, "s"), "}", ", faults: {stuck: 1, stuck_for: 60s}}", 1)
			sim := startSim(t, fmt.Sprintf(`
profiles: profiles
buses:
  - {name: st, protocol: %s, baud: 9600, meters: [%s]}
`, proto, stuck))
			var profiles map[string]*pmodbus.Profile
			if bc.profiles {
				profiles = loadProfiles(t)
			}
			m := bc.meter
			m.ID, m.Interval = "s", 300*time.Millisecond
			pi := sim.Ports()["st"]
			sink := newCollector()
			b, err := NewBus(BusConfig{Name: "st", Protocol: bc.proto, Link: link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}, Backoff: 200 * time.Millisecond},
				[]MeterConfig{m}, profiles, sink, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); b.Run(ctx) }()
			defer func() { cancel(); <-done }()
			// A few polls, not the minute the stuck transmitter lasts.
			start := time.Now()
			for noise := false; !noise; {
				if time.Since(start) > 20*time.Second {
					sink.mu.Lock()
					t.Fatalf("no line_noise in 20 s; %d readings of the stuck meter taken as good", len(sink.readings["s"]))
				}
				time.Sleep(20 * time.Millisecond)
				sink.mu.Lock()
				for _, e := range sink.events {
					noise = noise || e.Type == "line_noise"
				}
				sink.mu.Unlock()
			}
			sink.mu.Lock()
			t.Logf("line_noise after %s, %d readings", time.Since(start).Round(time.Millisecond), len(sink.readings["s"]))
			sink.mu.Unlock()
		})
	}
}
