package drivers

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"tidegate/configs"
	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
	"tidegate/reading"
	"tidegate/simulator"
	"tidegate/simulator/water"
)

// collector is a Sink that keeps everything.
type collector struct {
	mu       sync.Mutex
	readings map[string][]reading.Reading
	kinds    map[reading.Kind]int
	events   []reading.Event
	// With sim set, each good reading's forward total less the
	// simulator's, taken the moment the reading arrives (diff), and less
	// the simulator's at the meter's previous delivery, before this poll
	// was sent (since): registers only grow, so a right reading has diff
	// ≤ 0 ≤ since, however late the machine delivers it.
	sim   *simulator.Sim
	diff  map[string][]float64
	since map[string][]float64
	last  map[string]float64
}

func newCollector() *collector {
	return &collector{readings: map[string][]reading.Reading{}, kinds: map[reading.Kind]int{}}
}

func (c *collector) Reading(r reading.Reading, k reading.Kind) {
	var snap water.Snapshot
	if c.sim != nil {
		snap, _ = c.sim.Snapshot(r.Meter)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sim != nil {
		if c.diff == nil {
			c.diff, c.since, c.last = map[string][]float64{}, map[string][]float64{}, map[string]float64{}
		}
		prev, seen := c.last[r.Meter]
		if r.Quality == reading.QualityGood {
			c.diff[r.Meter] = append(c.diff[r.Meter], r.Forward-snap.Forward)
			if seen {
				c.since[r.Meter] = append(c.since[r.Meter], r.Forward-prev)
			}
		}
		c.last[r.Meter] = snap.Forward
	}
	c.readings[r.Meter] = append(c.readings[r.Meter], r)
	c.kinds[k]++
}

func (c *collector) Event(e reading.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *collector) good(id string) []reading.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []reading.Reading
	for _, r := range c.readings[id] {
		if r.Quality == reading.QualityGood {
			out = append(out, r)
		}
	}
	return out
}

func (c *collector) bad(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.readings[id] {
		if r.Quality == reading.QualityError {
			n++
		}
	}
	return n
}

func (c *collector) hasEvent(meter, typ string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.Meter == meter && e.Type == typ {
			return true
		}
	}
	return false
}

func startSim(t testing.TB, yaml string) *simulator.Sim {
	t.Helper()
	cfg, err := simulator.ParseConfig("testdata/sim.yaml", []byte(yaml))
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

func loadProfiles(t testing.TB) map[string]*pmodbus.Profile {
	t.Helper()
	p, err := configs.LoadProfiles("testdata/profiles")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const faultSim = `
seed: 3
speed: 1
profiles: profiles
buses:
  - name: a
    protocol: modbus
    baud: 38400
    turnaround: 3ms
    tcp: 127.0.0.1:0
    faults: {noise_every: 700ms}
    meters:
      - {id: ok1, address: 1, profile: tuf2000m, water: {profile: flat, persons: 4, use_scale: 20}}
      - {id: ok2, address: 2, profile: dynaflox-ultrad, water: {profile: flat, persons: 4, use_scale: 20}}
      - {id: ok3, address: 3, profile: arad-octave, water: {profile: shop, use_scale: 20}}
      - {id: dead, address: 4, profile: tuf2000m, faults: {dead: true}}
      - {id: crc, address: 5, profile: tuf2000m, faults: {crc: 0.3}}
      - {id: late, address: 6, profile: tuf2000m, faults: {late: 0.3, late_by: 400ms}}
      - {id: trunc, address: 7, profile: tuf2000m, faults: {truncated: 0.3}}
      - {id: wrong, address: 8, profile: tuf2000m, faults: {wrong_address: 0.3}}
      - {id: exc, address: 9, profile: tuf2000m, faults: {exception: 0.3}}
      - {id: quiet, address: 10, profile: tuf2000m, faults: {silent: [{from: 0s, for: 2s}]}}
`

// TestModbusBusFaults: every metersim fault is survived; healthy meters are
// polled on schedule and read exactly what the simulator holds.
func TestModbusBusFaults(t *testing.T) {
	for _, via := range []string{"pty", "tcp"} {
		t.Run(via, func(t *testing.T) {
			sim := startSim(t, faultSim)
			port := sim.Ports()["a"]
			lc := link.Config{Device: port.Device, Baud: 38400}
			if via == "tcp" {
				lc = link.Config{TCP: port.TCP, Baud: 38400}
			}
			var meters []MeterConfig
			for i, pm := range port.Meters {
				id := pm.ID
				prof := map[string]string{"ok2": "dynaflox-ultrad", "ok3": "arad-octave"}[id]
				if prof == "" {
					prof = "tuf2000m"
				}
				meters = append(meters, MeterConfig{ID: id, Address: i + 1, Profile: prof, Interval: 250 * time.Millisecond})
			}
			sink := newCollector()
			bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: lc, Timeout: 150 * time.Millisecond, Backoff: 300 * time.Millisecond}, meters, loadProfiles(t), sink, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			start := time.Now()
			go func() { bus.Run(ctx); close(done) }()
			// Run until everything the test looks for has happened, however
			// slowly a loaded machine gets there: ten meters, six of them
			// faulty, make a round of about a second when idle.
			const wantGood = 5
			happened := func() bool {
				for _, id := range []string{"ok1", "ok2", "ok3", "crc", "exc", "quiet"} {
					if len(sink.good(id)) < map[bool]int{true: wantGood, false: 1}[id[:2] == "ok"] {
						return false
					}
				}
				for _, id := range []string{"crc", "late", "trunc", "wrong", "exc"} {
					if sink.bad(id) == 0 {
						return false
					}
				}
				return sink.hasEvent("dead", "meter_offline")
			}
			for !happened() && time.Since(start) < 90*time.Second {
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			<-done
			elapsed := time.Since(start)

			for _, id := range []string{"ok1", "ok2", "ok3"} {
				good, bad := sink.good(id), sink.bad(id)
				if len(good) < wantGood {
					t.Errorf("%s: %d good readings in %v, want %d (faulty meters must not stall it)", id, len(good), elapsed.Round(time.Second), wantGood)
					continue
				}
				// A burst of line noise may cost a healthy meter a poll now
				// and then; its neighbours' faults must not.
				if bad > len(good)/2 {
					t.Errorf("%s: %d failed polls beside %d good", id, bad, len(good))
				}
				snap, _ := sim.Snapshot(id)
				last := good[len(good)-1]
				if last.Forward > snap.Forward+1e-6 || snap.Forward-last.Forward > 0.05 {
					t.Errorf("%s: last forward %v, simulator now %v", id, last.Forward, snap.Forward)
				}
				for i := 1; i < len(good); i++ {
					if good[i].Forward < good[i-1].Forward {
						t.Errorf("%s: forward went backwards %v -> %v", id, good[i-1].Forward, good[i].Forward)
					}
				}
			}
			if !sink.hasEvent("dead", "meter_offline") {
				t.Error("dead meter never marked offline")
			}
			// A dead meter backs off: after its first failure it is tried
			// after 1, 2, 4... backoff periods (0.3 s here), so in the time
			// the test ran it failed at most about log2(elapsed/0.3 s)+1 times.
			if d, most := sink.bad("dead"), 2+int(math.Log2(elapsed.Seconds()/0.3+1)); d > most {
				t.Errorf("dead meter failed %d times in %v, want at most %d: no backoff", d, elapsed.Round(time.Second), most)
			}
			for _, id := range []string{"crc", "late", "trunc", "wrong", "exc"} {
				if sink.bad(id) == 0 {
					t.Errorf("%s: its faults never surfaced as error readings", id)
				}
			}
			// Meters whose faults hit a fraction of answers still get through.
			for _, id := range []string{"crc", "exc"} {
				if len(sink.good(id)) == 0 {
					t.Errorf("%s: a 30%% fault and still no good reading", id)
				}
			}
			if len(sink.good("quiet")) == 0 || !sink.hasEvent("quiet", "meter_online") && sink.hasEvent("quiet", "meter_offline") {
				t.Errorf("quiet meter: %d good readings, events %v", len(sink.good("quiet")), sink.events)
			}
			st := bus.Stats()
			if st.Timeouts == 0 || st.CRCErrors == 0 || st.Exceptions == 0 || st.Stray == 0 {
				t.Errorf("counters: %+v, want timeouts, CRC errors and exceptions counted", st.Counters)
			}
		})
	}
}

// TestReopenAfterDeviceVanishes: the pty goes away (USB adapter unplugged)
// and comes back under another simulator; the bus reopens without a restart.
func TestBusReopen(t *testing.T) {
	cfg := `
profiles: profiles
buses:
  - name: a
    protocol: modbus
    baud: 19200
    pty: false
    tcp: 127.0.0.1:0
    meters:
      - {id: m1, address: 1, profile: tuf2000m}
`
	sim := startSim(t, cfg)
	addr := sim.Ports()["a"].TCP
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: link.Config{TCP: addr, Baud: 19200}, Timeout: 100 * time.Millisecond},
		[]MeterConfig{{ID: "m1", Address: 1, Profile: "tuf2000m", Interval: 100 * time.Millisecond}}, loadProfiles(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go bus.Run(ctx)
	waitFor(t, func() bool { return len(sink.good("m1")) > 2 })
	sim.Close() // the converter disappears
	before := len(sink.good("m1"))
	// A new converter on the same address.
	c2 := strings.Replace(cfg, "127.0.0.1:0", addr, 1)
	sim2 := startSim(t, c2)
	_ = sim2
	waitFor(t, func() bool { return len(sink.good("m1")) > before+2 })
	if bus.Stats().Reopens == 0 {
		t.Error("no reopen counted")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadNowAndBilling(t *testing.T) {
	sim := startSim(t, `
profiles: profiles
buses:
  - {name: a, protocol: modbus, baud: 19200, meters: [{id: m1, address: 1, profile: dynaflox-ultrad}]}
`)
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: link.Config{Device: sim.Ports()["a"].Device, Baud: 19200}},
		[]MeterConfig{{ID: "m1", Address: 1, Profile: "dynaflox-ultrad", Interval: time.Hour, Billing: "00:05"}}, loadProfiles(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	if next := bus.meters[0].billingNext; next.Hour() != 0 || next.Minute() != 5 || !next.After(time.Now()) {
		t.Fatalf("next billing read at %v, want the coming 00:05", next)
	}
	// Bring the billing read forward instead of waiting for 00:05.
	bus.meters[0].billingNext = time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go bus.Run(ctx)
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	r, err := bus.ReadNow(rctx, "m1")
	if err != nil || r.Has&reading.HasForward == 0 || r.BatteryMV != 3600 || len(r.Raw) == 0 {
		t.Fatalf("ReadNow: %+v %v", r, err)
	}
	if _, err := bus.ReadNow(rctx, "nope"); err == nil {
		t.Error("ReadNow of an unknown meter succeeded")
	}
	waitFor(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.kinds[reading.KindBilling] >= 1
	})
	// Done, the billing read is due again at the next 00:05, not in a minute.
	bus.mu.Lock()
	next := bus.meters[0].billingNext
	bus.mu.Unlock()
	if next.Hour() != 0 || next.Minute() != 5 || time.Until(next) < 0 || time.Until(next) > 24*time.Hour {
		t.Errorf("after a good billing read the next is at %v", next)
	}
}

// BenchmarkBusEfficiency polls 32 meters of 20 registers each on one
// 9600-baud bus as fast as the scheduler allows and reports polls/s against
// the wire-time limit: request + answer + two 3.5-character gaps +
// the simulator's turnaround, at 10 bits a character for 8N1.
func BenchmarkBusEfficiency(b *testing.B) {
	for _, dead := range []int{0, 1} {
		b.Run(fmt.Sprintf("dead=%d", dead), func(b *testing.B) {
			var sb strings.Builder
			sb.WriteString("profiles: profiles\nbuses:\n  - name: a\n    protocol: modbus\n    baud: 9600\n    turnaround: 5ms\n    meters:\n")
			var meters []MeterConfig
			for i := 1; i <= 32; i++ {
				f := ""
				if i <= dead {
					f = ", faults: {dead: true}"
				}
				fmt.Fprintf(&sb, "      - {id: m%d, address: %d, profile: bench20%s}\n", i, i, f)
				meters = append(meters, MeterConfig{ID: fmt.Sprintf("m%d", i), Address: i, Profile: "bench20", Interval: time.Millisecond})
			}
			sim := startSim(b, sb.String())
			sink := newCollector()
			bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: link.Config{Device: sim.Ports()["a"].Device, Baud: 9600}, Timeout: 300 * time.Millisecond},
				meters, loadProfiles(b), sink, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			go bus.Run(ctx)
			waitForB(b, func() bool { return bus.Stats().PollsOK > 0 })
			start, ok0 := time.Now(), bus.Stats().PollsOK
			target := ok0 + int64(b.N)
			for bus.Stats().PollsOK < target {
				time.Sleep(5 * time.Millisecond)
			}
			el := time.Since(start)
			cancel()
			polls := float64(bus.Stats().PollsOK - ok0)
			char := 10.0 / 9600
			limit := 1 / ((8+45)*char + 7*char + 0.005)
			b.ReportMetric(polls/el.Seconds(), "polls/s")
			b.ReportMetric(polls/el.Seconds()/limit, "ratio-to-wire-limit")
		})
	}
}

func waitForB(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("condition not met in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBusWaitsForABusyPort: a bus whose port another program holds logs it,
// keeps the busy error in its status, and opens the port once it is free.
func TestBusWaitsForABusyPort(t *testing.T) {
	sim := startSim(t, `
profiles: profiles
buses:
  - {name: a, protocol: modbus, baud: 19200, meters: [{id: m1, address: 1, profile: dynaflox-ultrad}]}
`)
	lc := link.Config{Device: sim.Ports()["a"].Device, Baud: 19200}
	holder, err := link.Open(lc)
	if err != nil {
		t.Fatal(err)
	}
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: lc},
		[]MeterConfig{{ID: "m1", Address: 1, Profile: "dynaflox-ultrad", Interval: 100 * time.Millisecond}}, loadProfiles(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go bus.Run(ctx)
	waitFor(t, func() bool { return strings.Contains(bus.Stats().LastError, "is in use by") })
	if st := bus.Stats(); st.Open || len(sink.good("m1")) != 0 {
		t.Fatalf("bus polled a port another holds: %+v", st)
	}
	holder.Close()
	waitFor(t, func() bool { return len(sink.good("m1")) > 0 })
}
