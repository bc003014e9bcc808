package mbus

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tidegate/drivers/link"
	pmbus "tidegate/protocol/mbus"
	"tidegate/simulator"
)

// startSim runs metersim in-process with one M-Bus bus described by meters
// (YAML list items) and returns the simulator and a master on its pty.
func startSim(t testing.TB, baud int, meters string, opt Options) (*simulator.Sim, *Master) {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf("seed: 3\nbuses:\n  - name: mb\n    protocol: mbus\n    baud: %d\n    meters:\n%s", baud, meters)
	cfg, err := simulator.ParseConfig(filepath.Join(dir, "sim.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	pi := sim.Ports()["mb"]
	l, err := link.Open(link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return sim, NewMaster(l, opt, nil)
}

// TestSimulatorMeters reads metersim's M-Bus meters by primary and by
// secondary address and checks the totals against the simulator's state.
func TestSimulatorMeters(t *testing.T) {
	sim, m := startSim(t, 9600, `      - {id: kam-1, address: 1, model: flowiq, secondary: "10000001", water: {profile: flat, persons: 3}}
      - {id: apa-2, address: 2, model: ultrimis, secondary: "20000002", water: {profile: shop, persons: 5}}
`, realOptions(9600))
	ctx := context.Background()
	for _, tc := range []struct {
		id   string
		addr byte
		sec  string
	}{{"kam-1", 1, "10000001"}, {"apa-2", 2, "20000002"}} {
		if err := m.Init(ctx, tc.addr); err != nil {
			t.Fatalf("%s: SND_NKE: %v", tc.id, err)
		}
		sec, err := parseSecondary(tc.sec)
		if err != nil {
			t.Fatal(err)
		}
		for _, how := range []string{"primary", "secondary"} {
			before, _ := sim.Snapshot(tc.id)
			var ts []Telegram
			if how == "primary" {
				ts, err = m.ReadPrimary(ctx, tc.addr)
			} else {
				ts, err = m.ReadSecondary(ctx, Secondary{ID: sec.ID, Manufacturer: 0xFFFF, Version: 0xFF, Medium: 0xFF})
			}
			if err != nil {
				t.Fatalf("%s by %s: %v", tc.id, how, err)
			}
			after, _ := sim.Snapshot(tc.id)
			res, err := Decode(tc.id, ts, time.Now(), false)
			if err != nil {
				t.Fatalf("%s by %s: decode: %v", tc.id, how, err)
			}
			got := res.Reading.Forward
			// The meter reports whole litres of a total that moves while we read.
			if got < math.Round(before.Forward*1000)/1000-1e-9 || got > math.Round(after.Forward*1000)/1000+1e-9 {
				t.Fatalf("%s by %s: forward %.3f, simulator %.6f..%.6f", tc.id, how, got, before.Forward, after.Forward)
			}
			if res.Secondary.ID != sec.ID {
				t.Fatalf("%s: secondary %v", tc.id, res.Secondary)
			}
			if tc.id == "kam-1" && (len(ts) != 2 || res.Due == nil) {
				t.Fatalf("flowIQ: %d telegrams, due %v; want 2 and a due-date value", len(ts), res.Due)
			}
		}
	}
	if c := m.Counters(); c.Timeouts.Load()+c.Checksum.Load()+c.WrongAddress.Load() != 0 {
		t.Fatalf("errors on a clean bus: %+v", c)
	}
}

// hundredByteTelegram is a replay file with one RSP_UD of exactly 100 bytes.
func hundredByteTelegram(t testing.TB) string {
	var rs []pmbus.Record
	for i := range 12 {
		rs = append(rs, pmbus.Record{DIB: []byte{0x04 | byte(i%2)<<6}, VIB: []byte{0x13}, Value: pmbus.Number(float64(i))})
	}
	rs = append(rs, pmbus.Record{DIB: []byte{0x04}, VIB: []byte{0x93, 0x3C}, Value: pmbus.Number(0.1)})
	h := pmbus.Header{Long: true, ID: "31415926", Manufacturer: "KAM", Medium: 7}
	raw, err := pmbus.EncodeRspUd(1, false, h, rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 100 {
		t.Fatalf("telegram is %d bytes", len(raw))
	}
	p := filepath.Join(t.TempDir(), "t100.hex")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("%X\n", raw)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkMBusRead polls one meter with a 100-byte telegram at 2400 baud
// 8E1 and compares with the wire's limit: idle (11 bit times) + REQ_UD2
// (5 bytes) + the simulator's 10 ms turnaround + 100 bytes, 11 bits each.
func BenchmarkMBusRead(b *testing.B) {
	file := hundredByteTelegram(b)
	_, m := startSim(b, 2400, fmt.Sprintf("      - {id: r1, address: 1, model: replay, replay: %q}\n", file), Options{})
	cfg := m.line.Config()
	limit := Idle(cfg) + cfg.CharTime()*105 + 10*time.Millisecond
	ctx := context.Background()
	if err := m.Init(ctx, 1); err != nil {
		b.Fatal(err)
	}
	if _, err := m.ReadPrimary(ctx, 1); err != nil { // warm-up: the first read is not steady state
		b.Fatal(err)
	}
	polls := 0
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for range 4 {
			if _, err := m.ReadPrimary(ctx, 1); err != nil {
				b.Fatal(err)
			}
			polls++
		}
	}
	el := time.Since(start)
	rate := float64(polls) / el.Seconds()
	b.ReportMetric(rate, "polls/s")
	b.ReportMetric(rate*limit.Seconds(), "ratio_to_wire")
	b.ReportMetric(1/limit.Seconds(), "wire_limit_polls/s")
}

// BenchmarkSecondaryScan finds 64 metersim meters with random ids on one
// 2400-baud bus and reports selects, seconds and the ratio of selects to
// the lower bound of one select per meter.
func BenchmarkSecondaryScan(b *testing.B) {
	rng := rand.New(rand.NewPCG(64, 64))
	var sb strings.Builder
	want := map[uint32]bool{}
	for i := 1; len(want) < 64; i++ {
		id := rng.Uint32N(100000000)
		if want[id] {
			continue
		}
		want[id] = true
		fmt.Fprintf(&sb, "      - {id: m%d, address: %d, model: flowiq, secondary: \"%08d\", water: {profile: vacant}}\n", i, i, id)
	}
	for range b.N {
		_, m := startSim(b, 2400, sb.String(), Options{})
		start := time.Now()
		var progress func(ScanProgress)
		if f := os.Getenv("TIDEGATE_SCANLOG"); f != "" {
			w, err := os.Create(f)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			progress = func(p ScanProgress) { fmt.Fprintf(w, "%+v\n", p) }
		}
		found, err := ScanSecondary(context.Background(), m, progress)
		if err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		hit := 0
		for _, s := range found {
			if want[s.ID] {
				hit++
			}
		}
		if hit != len(want) {
			for id := range want {
				if !slices.ContainsFunc(found, func(s Secondary) bool { return s.ID == id }) {
					b.Logf("missed %08d", id)
				}
			}
			b.Fatalf("found %d of %d meters", hit, len(want))
		}
		if len(found) != hit {
			b.Fatalf("listed %d ids, %d of them meters: %v", len(found), hit, found)
		}
		sel := m.Counters().Selects.Load()
		b.ReportMetric(float64(sel), "selects")
		b.ReportMetric(float64(m.Counters().Late.Load()), "late")
		b.ReportMetric(float64(m.Counters().Retries.Load()), "retries")
		b.ReportMetric(float64(m.Counters().Phantoms.Load()), "phantoms")
		b.ReportMetric(el.Seconds(), "scan_s")
		b.ReportMetric(float64(sel)/float64(len(want)), "ratio_to_bound")
	}
}
