package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EReadingsReachTheBroker: metersim, tidegate run and a broker as real
// processes (the broker in the test process). Readings of every meter arrive
// at the broker with stable ids; after SIGTERM tidegate exits 0 and its
// buffer holds nothing unsent.
func TestE2EReadingsReachTheBroker(t *testing.T) {
	bin := buildBinaries(t)
	br := startTestBroker(t)
	dir := t.TempDir()
	simCfg := filepath.Join(dir, "sim.yaml")
	profiles, _ := filepath.Abs("../../configs/profiles")
	if err := os.WriteFile(simCfg, []byte(`
speed: 60
profiles: `+profiles+`
buses:
  - name: rtu
    protocol: modbus
    baud: 19200
    turnaround: 3ms
    meters:
      - {id: m1, address: 1, profile: dynaflox-ultrad, water: {profile: flat, persons: 4, use_scale: 5}}
      - {id: m2, address: 2, profile: tuf2000m, water: {profile: vacant, surges: {per_day: 300, amplitude_lh: 300}}}
  - name: mb
    protocol: mbus
    baud: 9600
    turnaround: 5ms
    meters:
      - {id: k1, address: 3, model: flowiq, secondary: "12345611", water: {profile: flat}}
      - {id: k2, address: 7, model: ultrimis, secondary: "12345612", water: {profile: flat}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	portsFile := filepath.Join(dir, "ports.json")
	startProc(t, filepath.Join(bin, "metersim"), "--config", simCfg, "--ports", portsFile)
	var ports map[string]struct{ Device string }
	eventually(t, 10*time.Second, "metersim writes its ports", func() bool {
		data, err := os.ReadFile(portsFile)
		return err == nil && json.Unmarshal(data, &ports) == nil && len(ports) == 2
	})
	cfg := filepath.Join(dir, "tidegate.yaml")
	buses := "  - {name: rtu, protocol: modbus, device: " + ports["rtu"].Device + ", baud: 19200, timeout: 200ms}\n" +
		"  - {name: mb, protocol: mbus, device: " + ports["mb"].Device + ", baud: 9600}\n"
	meters := "  - {id: m1, bus: rtu, address: 1, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: m2, bus: rtu, address: 2, profile: tuf2000m, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: k1, bus: mb, address: 3, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: k2, bus: mb, secondary: \"12345612\", poll: {flow: 1s, totals: 1s}}"
	if err := os.WriteFile(cfg, []byte(e2eConfig(dir, br.addr, buses, meters)), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)

	seen := func() map[string]int {
		n := map[string]int{}
		for _, m := range br.messages() {
			if !strings.HasSuffix(m.topic, "/readings") {
				continue
			}
			var doc struct {
				Batch []struct {
					ID      string  `json:"id"`
					Meter   string  `json:"meter"`
					Forward float64 `json:"forward_m3"`
				} `json:"batch"`
			}
			if json.Unmarshal([]byte(m.payload), &doc) != nil {
				continue
			}
			for _, r := range doc.Batch {
				if !strings.HasPrefix(r.ID, "gw-e2e:") {
					t.Errorf("record id %q is not gateway:seq", r.ID)
				}
				n[r.Meter]++
			}
		}
		return n
	}
	eventually(t, 30*time.Second, "readings of every meter at the broker", func() bool {
		n := seen()
		return n["m1"] >= 3 && n["m2"] >= 3 && n["k1"] >= 2 && n["k2"] >= 2
	})
	if code := tg.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	// Nothing left unsent: the buffer the daemon closed is empty.
	code, out, errOut := runCmd(t, "", "buffer", "stats", "--path", filepath.Join(dir, "buffer.db"), "--json")
	if code != 0 {
		t.Fatalf("buffer stats: %s%s", out, errOut)
	}
	var st struct{ Depth uint64 }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("buffer stats --json: %v\n%s", err, out)
	}
	if st.Depth != 0 {
		t.Errorf("buffer holds %d unsent records after a clean stop", st.Depth)
	}
	var offline bool
	for _, m := range br.messages() {
		offline = offline || (strings.HasSuffix(m.topic, "/status") && strings.Contains(m.payload, "offline"))
	}
	if !offline {
		t.Error("no offline status published at stop")
	}
}
