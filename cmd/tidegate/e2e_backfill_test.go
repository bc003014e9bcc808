package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tidegate/simulator"
)

// TestE2EBackfillAfterThreeDaysDown: `tidegate run` polls two CJ/T 188
// meters of metersim (a simulated day in 8 s) with backfill on and sends
// each day's freeze from the meters' memory; it is stopped (SIGTERM) for
// three simulated days and started again on the same buffer: it then sends
// the three missed daily values per meter, from meter memory, historical,
// with the meters' own midnight as meter_time, equal to what the simulated
// meters froze, and no day twice.
func TestE2EBackfillAfterThreeDaysDown(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	br := startTestBroker(t)
	dir := t.TempDir()
	cfgSim, err := simulator.ParseConfig(filepath.Join(dir, "sim.yaml"), []byte(`
seed: 4
speed: 10800
start: 2026-12-01T22:00:00Z
buses:
  - name: cj
    protocol: cjt188
    turnaround: 5ms
    meters:
      - {id: cj-1, address: "78330011223344", water: {profile: flat, persons: 4, use_scale: 20, leaks: [{rate_lh: 20}]}}
      - {id: cj-2, address: "78330011223345", clock_order: century-first, water: {profile: shop, use_scale: 20}}
`))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.Start(context.Background(), cfgSim, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	buses := "  - {name: cj, protocol: cjt188, device: " + sim.Ports()["cj"].Device + ", timeout: 1s}\n"
	meters := "  - {id: cj-1, bus: cj, address: \"78330011223344\", backfill: true, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: cj-2, bus: cj, address: \"78330011223345\", clock_order: century-first, backfill: true, poll: {flow: 1s, totals: 1s}}\n"
	text := strings.Replace(e2eConfig(dir, br.addr, buses, meters), "gateway: {id: gw-e2e}", "gateway: {id: gw-e2e, timezone: UTC}", 1)
	text = strings.Replace(text, "topic_prefix: e2e,", "topic_prefix: e2e, commands: true,", 1)
	cfg := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	type rec struct {
		ID         string    `json:"id"`
		Meter      string    `json:"meter"`
		Kind       string    `json:"kind"`
		MeterTime  time.Time `json:"meter_time"`
		Forward    *float64  `json:"forward_m3"`
		Source     string    `json:"source"`
		Historical bool      `json:"historical"`
	}
	memory := func() []rec {
		var out []rec
		for _, m := range br.messages() {
			if !strings.HasSuffix(m.topic, "/readings") {
				continue
			}
			var doc struct {
				Batch []rec `json:"batch"`
			}
			if json.Unmarshal([]byte(m.payload), &doc) != nil {
				continue
			}
			for _, r := range doc.Batch {
				if r.Source != "" {
					out = append(out, r)
				}
			}
		}
		return out
	}
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	upTo := func(rs []rec, meter string) time.Time {
		var last time.Time
		for _, r := range rs {
			if r.Meter == meter && r.MeterTime.After(last) {
				last = r.MeterTime
			}
		}
		return last
	}

	p := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	eventually(t, 60*time.Second, "each meter's freeze of Dec 2 at the broker", func() bool {
		rs := memory()
		return !upTo(rs, "cj-1").Before(day(2)) && !upTo(rs, "cj-2").Before(day(2))
	})
	if code := p.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("tidegate exited %d", code)
	}
	before := memory()
	if sim.Now().After(day(2).Add(20 * time.Hour)) {
		t.Skipf("the daemon stopped late (simulation at %s): the machine is too busy for this clock", sim.Now())
	}
	held := map[string]time.Time{"cj-1": upTo(before, "cj-1"), "cj-2": upTo(before, "cj-2")}
	// Down for the meters' midnights of Dec 3, 4 and 5.
	eventually(t, 60*time.Second, "three simulated days", func() bool { return sim.Now().After(day(5).Add(time.Hour)) })
	startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	eventually(t, 60*time.Second, "the missed days of both meters at the broker", func() bool {
		rs := memory()
		return !upTo(rs, "cj-1").Before(day(5)) && !upTo(rs, "cj-2").Before(day(5))
	})

	all := memory()
	for _, id := range []string{"cj-1", "cj-2"} {
		truth := map[time.Time]float64{}
		cm, _ := sim.CJTMeter(id)
		for _, f := range cm.DailyFreezes() {
			truth[f.Time] = f.Volume
		}
		seen := map[time.Time]int{}
		var after []rec
		for _, r := range all {
			if r.Meter != id {
				continue
			}
			seen[r.MeterTime]++
			if r.MeterTime.After(held[id]) {
				after = append(after, r)
			}
			v, ok := truth[r.MeterTime]
			if r.Source != "meter_memory" || !r.Historical || r.Kind != "billing" || r.Forward == nil || !ok || math.Abs(*r.Forward-v) > 1e-9 {
				t.Fatalf("%s: %+v, the meter froze %v at %s", id, r, v, r.MeterTime)
			}
		}
		for tm, n := range seen {
			if n != 1 {
				t.Fatalf("%s: the freeze of %s sent %d times", id, tm, n)
			}
		}
		if held[id].After(day(2)) || len(after) < 3 {
			t.Fatalf("%s: sent up to %s before the stop, then %d values: %+v", id, held[id], len(after), after)
		}
		for i, r := range after[:3] {
			if want := day(3 + i); !r.MeterTime.Equal(want) {
				t.Fatalf("%s: after the restart, value %d is of %s, want %s", id, i, r.MeterTime, want)
			}
		}
	}

	// The downlink backfill reads a range again on demand and answers with it.
	br.srv.Publish("e2e/v1/gw-e2e/cmd/backfill", []byte(`{"id":"bf-1","command":"backfill","meter":"cj-2","from":"2026-12-02T00:00:00Z","to":"2026-12-04T00:00:00Z"}`), false, 1)
	var result struct {
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
		Result struct {
			Values []rec `json:"values"`
		} `json:"result"`
	}
	eventually(t, 30*time.Second, "the backfill command's result", func() bool {
		for _, m := range br.messages() {
			if m.topic == "e2e/v1/gw-e2e/cmd/bf-1/result" {
				return json.Unmarshal([]byte(m.payload), &result) == nil
			}
		}
		return false
	})
	truth := map[time.Time]float64{}
	cm, _ := sim.CJTMeter("cj-2")
	for _, f := range cm.DailyFreezes() {
		truth[f.Time] = f.Volume
	}
	if !result.OK || len(result.Result.Values) != 3 {
		t.Fatalf("backfill result %+v", result)
	}
	for i, r := range result.Result.Values { // newest first
		if want := day(4 - i); !r.MeterTime.Equal(want) || r.Forward == nil || *r.Forward != truth[want] || r.Source != "meter_memory" || !r.Historical {
			t.Fatalf("backfill value %d: %+v, want %s at %v", i, r, want, truth[want])
		}
	}
}
