package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2ECJT188Chain: metersim's CJ/T 188 meters (on a CJ/T 188 bus, and
// one on a mixed M-Bus line) through `tidegate run` reach a real broker as
// readings and events (clock_drift: metersim's clock runs 60× fast); a
// valve closed through the downlink command answers with its outcome,
// comes back as a valve event with the request id, and the simulated
// meter's total stops moving.
func TestE2ECJT188Chain(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	br := startTestBroker(t)
	dir := t.TempDir()
	ports := startMetersim(t, bin, dir, `buses:
  - name: cj
    protocol: cjt188
    turnaround: 5ms
    meters:
      - {id: cj-1, address: "78330011223344", valve: true, preamble: 2, water: {profile: flat, persons: 4, use_scale: 20, leaks: [{rate_lh: 400}]}}
      - {id: cj-2, address: "00000024170567", di_order: low-first, clock_order: century-first, water: {profile: flat, use_scale: 20}}
  - name: mix
    protocol: mbus
    turnaround: 5ms
    meters:
      - {id: k1, address: 3, model: flowiq, water: {profile: flat}}
      - {id: cj-3, protocol: cjt188, address: "78330000000003", water: {profile: shop, use_scale: 20}}
`)
	// cj-2's daily billing read comes in the next minute but one (never
	// less than 10 s away, so the daemon is up for it): it carries the
	// settlement-day volume as storage 1 beside the current total.
	at := time.Now().Add(time.Minute)
	if at.Second() > 50 {
		at = at.Add(time.Minute)
	}
	billing := at.Format("15:04")
	// Answer timeouts of a second: metersim's answers must not miss the
	// default (a third of a second at 2400 baud) on a loaded test machine.
	buses := "  - {name: cj, protocol: cjt188, device: " + ports["cj"] + ", preamble: 3, timeout: 1s}\n" +
		"  - {name: mix, protocol: mbus, device: " + ports["mix"] + ", timeout: 1s}\n"
	meters := "  - {id: cj-1, bus: cj, address: \"78330011223344\", valve: true, valve_min_interval: 1s, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: cj-2, bus: cj, address: 00000024170567, di_order: low-first, clock_order: century-first, poll: {flow: 1s, totals: 1s}, billing_time: \"" + billing + "\"}\n" +
		"  - {id: k1, bus: mix, address: 3, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: cj-3, bus: mix, protocol: cjt188, address: \"78330000000003\", poll: {flow: 1s, totals: 1s}}\n"
	text := strings.Replace(e2eConfig(dir, br.addr, buses, meters), "topic_prefix: e2e,", "topic_prefix: e2e, commands: true, unsigned_valve: allow,", 1) // signed commands: e2e_valve_test.go
	cfg := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)

	type rec struct {
		Meter   string            `json:"meter"`
		Forward *float64          `json:"forward_m3"`
		Quality string            `json:"quality"`
		Status  []string          `json:"status"`
		Type    string            `json:"type"`
		Kind    string            `json:"kind"`
		Storage int               `json:"storage"`
		Attrs   map[string]string `json:"attrs"`
	}
	collect := func(suffix string) []rec {
		var out []rec
		for _, m := range br.messages() {
			if !strings.HasSuffix(m.topic, suffix) {
				continue
			}
			var doc struct {
				Batch []rec `json:"batch"`
			}
			if json.Unmarshal([]byte(m.payload), &doc) == nil && len(doc.Batch) > 0 {
				out = append(out, doc.Batch...)
				continue
			}
			var r rec
			if json.Unmarshal([]byte(m.payload), &r) == nil {
				out = append(out, r)
			}
		}
		return out
	}
	good := func(meter string) []float64 {
		var v []float64
		for _, r := range collect("/readings") {
			if r.Meter == meter && r.Forward != nil && (r.Quality == "" || r.Quality == "good") {
				v = append(v, *r.Forward)
			}
		}
		return v
	}
	event := func(typ, meter string) (rec, bool) {
		for _, e := range collect("/events") {
			if e.Type == typ && e.Meter == meter {
				return e, true
			}
		}
		return rec{}, false
	}
	eventually(t, 40*time.Second, "readings of every CJ/T 188 meter (and the M-Bus one beside them) at the broker", func() bool {
		return len(good("cj-1")) >= 3 && len(good("cj-2")) >= 3 && len(good("cj-3")) >= 3 && len(good("k1")) >= 2
	})
	eventually(t, 30*time.Second, "a clock_drift event (metersim's clocks run 60× fast)", func() bool {
		_, ok := event("clock_drift", "cj-1")
		return ok
	})

	br.srv.Publish("e2e/v1/gw-e2e/cmd/valve", []byte(`{"id":"v-1","command":"valve","meter":"cj-1","action":"close"}`), false, 1)
	var result struct {
		OK     bool `json:"ok"`
		Result struct {
			Outcome string `json:"outcome"`
			Valve   string `json:"valve"`
			Reading struct {
				Forward *float64 `json:"forward_m3"`
			} `json:"reading"`
		} `json:"result"`
		Error string `json:"error"`
	}
	eventually(t, 30*time.Second, "the valve command's result", func() bool {
		for _, m := range br.messages() {
			if m.topic == "e2e/v1/gw-e2e/cmd/v-1/result" {
				return json.Unmarshal([]byte(m.payload), &result) == nil
			}
		}
		return false
	})
	if !result.OK || result.Result.Outcome != "done" || result.Result.Valve != "closed" || result.Result.Reading.Forward == nil {
		t.Fatalf("valve result %+v", result)
	}
	eventually(t, 20*time.Second, "the valve event", func() bool {
		e, ok := event("valve", "cj-1")
		return ok && e.Attrs["request"] == "v-1" && e.Attrs["outcome"] == "done" && e.Attrs["valve"] == "closed"
	})
	// The closed valve stops the simulated flow: the total stands at what
	// was read back right after closing while readings go on (a 400 L/h
	// leak at 60× would move it 6.7 L a second). Readings polled before the
	// close may still arrive (the filter holds a window back): the last
	// ones are checked.
	closed := *result.Result.Reading.Forward
	n := len(good("cj-1"))
	eventually(t, 30*time.Second, "more readings of cj-1 after the valve closed", func() bool { return len(good("cj-1")) >= n+8 })
	v := good("cj-1")
	for _, x := range v[len(v)-4:] {
		if x != closed {
			t.Fatalf("valve closed at %v m3, the total still moves: %v", closed, v[n:])
		}
	}
	// The technician's verb through the control socket opens it again.
	socket := filepath.Join(dir, "api.sock")
	code, out, errOut := runCmd(t, "", "valve", "--socket", socket, "cj-1", "open")
	if code != exitOK || !strings.Contains(out, "valve open done; valve now open") {
		t.Fatalf("tidegate valve cj-1 open: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "", "valve", "--socket", socket, "cj-2", "close"); code == exitOK || !strings.Contains(errOut, "valve control is not enabled") {
		t.Fatalf("tidegate valve cj-2 close: exit %d %s", code, errOut)
	}
	eventually(t, 150*time.Second, "cj-2's billing read at "+billing+" with its settlement-day volume (storage 1)", func() bool {
		var current, settlement bool
		for _, r := range collect("/readings") {
			if r.Meter == "cj-2" && r.Kind == "billing" && r.Forward != nil {
				current = current || r.Storage == 0
				settlement = settlement || r.Storage == 1
			}
		}
		return current && settlement
	})
	// A meter without valve: true is refused.
	br.srv.Publish("e2e/v1/gw-e2e/cmd/valve", []byte(`{"id":"v-2","command":"valve","meter":"cj-2","action":"close"}`), false, 1)
	eventually(t, 20*time.Second, "the refusal for a meter without valve control", func() bool {
		for _, m := range br.messages() {
			if m.topic == "e2e/v1/gw-e2e/cmd/v-2/result" {
				return strings.Contains(m.payload, "valve control is not enabled") && strings.Contains(m.payload, `"ok":false`)
			}
		}
		return false
	})
}
