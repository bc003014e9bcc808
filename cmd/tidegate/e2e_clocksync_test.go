package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tidegate/simulator"
)

// TestE2EClockSync: `tidegate run` with clock_sync on a CJ/T 188 meter whose
// clock metersim keeps 10 min behind. What it does depends on this
// machine's own clock, read as the daemon reads it (adjtimex): synchronised,
// the meter is set once and a clock_set event with the drift before and
// after reaches the broker; not synchronised, it is never set and one
// clock_set_skipped event says why. The drivers' tests run both ways on a
// gateway clock they control (TestClockSetOnceWhenSynchronised).
func TestE2EClockSync(t *testing.T) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		t.Skipf("adjtimex: %v", err)
	}
	synced := state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	bin := buildBinaries(t)
	br := startTestBroker(t)
	dir := t.TempDir()
	cfgSim, err := simulator.ParseConfig(filepath.Join(dir, "sim.yaml"), []byte(`
seed: 4
buses:
  - name: cj
    protocol: cjt188
    turnaround: 5ms
    meters:
      - {id: cj-1, address: "78330011223344", clock_offset: -10m, water: {profile: flat}}
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
	meters := "  - {id: cj-1, bus: cj, address: \"78330011223344\", clock_sync: 1m, poll: {flow: 1s, totals: 1s}}\n"
	cfg := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(cfg, []byte(e2eConfig(dir, br.addr, buses, meters)), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	events := func(typ string) []map[string]any {
		var out []map[string]any
		for _, m := range br.messages() {
			if !strings.HasSuffix(m.topic, "/events") {
				continue
			}
			var e map[string]any
			if json.Unmarshal([]byte(m.payload), &e) == nil && e["type"] == typ && e["meter"] == "cj-1" {
				out = append(out, e)
			}
		}
		return out
	}
	want := "clock_set_skipped"
	if synced {
		want = "clock_set"
	}
	eventually(t, 40*time.Second, "a "+want+" event for cj-1 (gateway clock synchronised: "+map[bool]string{true: "yes", false: "no"}[synced]+")", func() bool {
		return len(events(want)) > 0
	})
	time.Sleep(4 * time.Second) // more polls: nothing more is written
	cm, _ := sim.CJTMeter("cj-1")
	set, skipped := events("clock_set"), events("clock_set_skipped")
	attrs, _ := events(want)[0]["attrs"].(map[string]any)
	switch {
	case synced && (len(set) != 1 || cm.ClockSets() != 1 || attrs["drift_before_s"] == nil || attrs["drift_after_s"] == nil):
		t.Fatalf("synchronised: %d clock_set events %v, %d writes", len(set), set, cm.ClockSets())
	case !synced && (len(skipped) != 1 || len(set) != 0 || cm.ClockSets() != 0):
		t.Fatalf("not synchronised: %d skipped, %d set events, %d writes", len(skipped), len(set), cm.ClockSets())
	}
}
