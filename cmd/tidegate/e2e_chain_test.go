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
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	br := startTestBroker(t)
	dir := t.TempDir()
	ports := startMetersim(t, bin, dir, `buses:
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
`)
	cfg := filepath.Join(dir, "tidegate.yaml")
	buses := "  - {name: rtu, protocol: modbus, device: " + ports["rtu"] + ", baud: 19200, timeout: 200ms}\n" +
		"  - {name: mb, protocol: mbus, device: " + ports["mb"] + ", baud: 9600}\n"
	m1 := "  - {id: m1, bus: rtu, address: 1, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}\n"
	m2 := "  - {id: m2, bus: rtu, address: 2, profile: tuf2000m, poll: {flow: 1s, totals: 1s}}\n"
	k1 := "  - {id: k1, bus: mb, address: 3, poll: {flow: 1s, totals: 1s}}\n"
	k2 := "  - {id: k2, bus: mb, secondary: \"12345612\", poll: {flow: 1s, totals: 1s}}\n"
	// k2 is not configured at first: a SIGHUP adds it (and removes m2) later.
	if err := os.WriteFile(cfg, []byte(e2eConfig(dir, br.addr, buses, m1+m2+k1)), 0o600); err != nil {
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
	eventually(t, 30*time.Second, "readings of every configured meter at the broker", func() bool {
		n := seen()
		return n["m1"] >= 3 && n["m2"] >= 3 && n["k1"] >= 2
	})
	if n := seen(); n["k2"] != 0 {
		t.Fatalf("k2 is not configured yet but has %d readings", n["k2"])
	}

	// A broken config on SIGHUP is refused; the running one keeps polling.
	socket := filepath.Join(dir, "api.sock")
	if err := os.WriteFile(cfg, []byte("gateway: {id: gw-e2e}\nmeters: [{id: m1, bus: nowhere}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := seen()["m1"]
	_ = tg.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "broken config refused", func() bool {
		s, err := status(t, socket)
		return err == nil && s.Reloads == 1 && strings.Contains(s.LastReload, "refused") && len(s.Meters) == 3
	})
	eventually(t, 20*time.Second, "m1 still polled after the refused reload", func() bool { return seen()["m1"] >= before+3 })

	// A changed meter list on SIGHUP takes effect: k2 added, m2 removed.
	// Both buses restart; their counters carry on from where they were.
	requests := map[string]uint64{}
	if s, err := status(t, socket); err == nil {
		for _, b := range s.Buses {
			requests[b.Name] = b.Requests
		}
	}
	if err := os.WriteFile(cfg, []byte(e2eConfig(dir, br.addr, buses, m1+k1+k2)), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = tg.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "changed meter list applied", func() bool {
		s, err := status(t, socket)
		if err != nil || s.Reloads != 2 || !strings.Contains(s.LastReload, "applied") {
			return false
		}
		ids := map[string]bool{}
		for _, m := range s.Meters {
			ids[m.ID] = true
		}
		return len(ids) == 3 && ids["k2"] && !ids["m2"]
	})
	if s, err := status(t, socket); err == nil {
		for _, b := range s.Buses {
			if requests[b.Name] == 0 || b.Requests < requests[b.Name] {
				t.Errorf("bus %s: %d requests before the reload, %d after: counters reset", b.Name, requests[b.Name], b.Requests)
			}
		}
	}
	eventually(t, 30*time.Second, "readings of the added meter k2 at the broker", func() bool { return seen()["k2"] >= 2 })
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

// startMetersim runs metersim on a config of the given buses (with the
// repository's profiles, 60x time) and returns each bus's pty.
func startMetersim(t *testing.T, bin, dir, buses string) map[string]string {
	t.Helper()
	simCfg := filepath.Join(dir, "sim.yaml")
	profiles, _ := filepath.Abs("../../configs/profiles")
	if err := os.WriteFile(simCfg, []byte("speed: 60\nprofiles: "+profiles+"\n"+buses), 0o600); err != nil {
		t.Fatal(err)
	}
	portsFile := filepath.Join(dir, "ports.json")
	startProc(t, filepath.Join(bin, "metersim"), "--config", simCfg, "--ports", portsFile)
	var ports map[string]struct{ Device string }
	eventually(t, 10*time.Second, "metersim writes its ports", func() bool {
		data, err := os.ReadFile(portsFile)
		return err == nil && json.Unmarshal(data, &ports) == nil && len(ports) > 0
	})
	out := map[string]string{}
	for name, p := range ports {
		out[name] = p.Device
	}
	return out
}
