package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// receiverLines is tidegate-receiver's output, one JSON object a line.
func receiverLines(p *proc) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(p.out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestE2ERemoteConfig: metersim, tidegate, Debian's mosquitto and the
// reference receiver as processes; commands sent with the receiver's
// command verb. A config pushed over MQTT that adds a meter has it polled
// and its hash in the retained status; a stale base_hash and a config
// problem (with its file:line:col) are refused; a meter replaced with
// meters_upsert is polled at its new address and the file keeps its
// comments; a config whose broker is unreachable is rolled back within
// mqtt.config_rollback_after with a config_rolled_back event; tidegate
// status never shows the broker password.
func TestE2ERemoteConfig(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	mq := startMosquittoProc(t)
	dir := t.TempDir()
	ports := startMetersim(t, bin, dir, `buses:
  - name: mb
    protocol: mbus
    baud: 9600
    turnaround: 5ms
    meters:
      - {id: s3, address: 3, model: flowiq, secondary: "12345603", water: {profile: vacant}}
      - {id: s7, address: 7, model: flowiq, secondary: "12345607", water: {profile: vacant}}
      - {id: s9, address: 9, model: flowiq, secondary: "12345609", water: {profile: vacant, leaks: [{after: 0s, for: 1000h, rate_lh: 600}]}}
`)
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	broker := "tcp://gwuser:S3cretPW@" + mq.addr
	cfgText := func(meters, mqttExtra string) string {
		return `# gateway at the water tower: remote config test
gateway: {id: gw-e2e}
log: {level: debug, format: json}
api: {socket: ` + filepath.Join(dir, "api.sock") + `}
buses:
  - {name: mb, protocol: mbus, device: ` + ports["mb"] + `, baud: 9600}
meters:
  # the meter at the door
  - {id: k1, bus: mb, address: 3, poll: {flow: 1s, totals: 1s}}  # since 2024
` + meters + `
filter: {enabled: false}
buffer: {path: ` + filepath.Join(dir, "buffer.db") + `}
mqtt:
  broker: "` + broker + `"
  topic_prefix: e2e
  ack: application
  commands: true
  unsigned_config: allow
  config_rollback_after: 20s
  health_every: 2s
  batch: {max_count: 20, max_latency: 200ms}
` + mqttExtra
	}
	if err := os.WriteFile(cfgPath, []byte(cfgText("", "")), 0o640); err != nil {
		t.Fatal(err)
	}
	startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfgPath)
	rx := startProc(t, filepath.Join(bin, "tidegate-receiver"), "--broker", "tcp://"+mq.addr, "--prefix", "e2e", "--gateway", "gw-e2e", "--ack", "--gap-after", "10s")
	command := func(js string) map[string]any {
		t.Helper()
		out, err := exec.Command(filepath.Join(bin, "tidegate-receiver"), "command", "--broker", "tcp://"+mq.addr, "--prefix", "e2e", "--gateway", "gw-e2e", js).Output()
		var res map[string]any
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			t.Fatalf("command %s: %v %s", js, err, out)
		}
		return res
	}
	// What the receiver stored: each record once, by meter; the last
	// config hash the gateway's status and health carried.
	flows := func(meter string) (n int, lastFlow float64) {
		for _, l := range receiverLines(rx) {
			rec, _ := l["record"].(map[string]any)
			if l["type"] == "record" && rec["meter"] == meter && rec["kind"] == "reading" {
				n++
				if f, ok := rec["flow_m3h"].(float64); ok {
					lastFlow = f
				}
			}
		}
		return n, lastFlow
	}
	hashes := func() map[string]bool {
		h := map[string]bool{}
		for _, l := range receiverLines(rx) {
			if l["type"] == "health" {
				if hh, ok := l["health"].(map[string]any); ok {
					h[hh["config_hash"].(string)] = true
				}
			}
			if l["type"] == "status" {
				if s, ok := l["status"].(map[string]any); ok && s["config_hash"] != nil {
					h[s["config_hash"].(string)] = true
				}
			}
		}
		return h
	}
	eventually(t, 30*time.Second, "k1 readings at the receiver", func() bool { n, _ := flows("k1"); return n >= 2 })

	get := command(`{"id":"g1","command":"config_get"}`)
	res, _ := get["result"].(map[string]any)
	h0, _ := res["config_hash"].(string)
	if get["ok"] != true || h0 == "" || strings.Contains(res["config"].(string), "S3cretPW") || !strings.Contains(res["config"].(string), "gwuser:***@") {
		t.Fatalf("config_get: %v", get)
	}

	// Stale base_hash; a config problem with its position.
	withK2 := cfgText("  - {id: k2, bus: mb, address: 7, poll: {flow: 1s, totals: 1s}}\n", "")
	push := func(id, base, text string) map[string]any {
		b, _ := json.Marshal(map[string]string{"id": id, "command": "config", "base_hash": base, "config": text})
		return command(string(b))
	}
	if r := push("c-stale", "00000000deadbeef", withK2); r["ok"] != false || !strings.Contains(r["error"].(string), "base_hash") {
		t.Fatalf("stale base_hash: %v", r)
	}
	bad := strings.Replace(withK2, "address: 7,", "address: 700,", 1)
	r := push("c-bad", h0, bad)
	probs, _ := r["problems"].([]any)
	if r["ok"] != false || len(probs) != 1 || !regexp.MustCompile(`^tidegate\.yaml:10:\d+: meters\[1\]\.address: 700 is out of range`).MatchString(probs[0].(string)) {
		t.Fatalf("config with a problem: %v", r)
	}

	// The good one: k2 polled within 30 s, its hash in the status.
	r = push("c-add", h0, withK2)
	res, _ = r["result"].(map[string]any)
	if r["ok"] != true {
		t.Fatalf("config adding k2: %v", r)
	}
	h1 := res["config_hash"].(string)
	if b, _ := json.Marshal(res["restarted"]); string(b) != `{"buses":["mb"],"meters":["k2"]}` {
		t.Errorf("restarted: %s", b)
	}
	eventually(t, 30*time.Second, "k2 polled and at the receiver", func() bool { n, _ := flows("k2"); return n >= 2 })
	eventually(t, 10*time.Second, "the new hash in the status and health", func() bool { return hashes()[h1] })
	s, err := status(t, filepath.Join(dir, "api.sock"))
	if err != nil || s.ConfigHash != h1 {
		t.Fatalf("local status: %v %v", s.ConfigHash, err)
	}
	// mqtt.ack: application: only the receiver's acks let the buffer forget.
	eventually(t, 20*time.Second, "the buffer kept short by the receiver's acks", func() bool {
		s, err := status(t, filepath.Join(dir, "api.sock"))
		return err == nil && s.Buffer.Depth < 20 && s.Broker.Published > 40
	})

	// meters_upsert: k2 is now the meter at address 9 (it leaks 0.6 m3/h).
	r = command(`{"id":"u1","command":"meters_upsert","meters":[{"id":"k2","bus":"mb","address":9,"poll":{"flow":"1s","totals":"1s"}}]}`)
	if r["ok"] != true {
		t.Fatalf("meters_upsert: %v", r)
	}
	eventually(t, 30*time.Second, "k2 polled at its new address", func() bool { _, f := flows("k2"); return f > 0.3 })
	text, _ := os.ReadFile(cfgPath)
	for _, c := range []string{"# gateway at the water tower", "# the meter at the door", "# since 2024"} {
		if !strings.Contains(string(text), c) {
			t.Errorf("comment %q lost:\n%s", c, text)
		}
	}
	h2 := r["result"].(map[string]any)["config_hash"].(string)

	// tidegate status never shows the password.
	code, out, errOut := runCmd(t, "", "status", "--socket", filepath.Join(dir, "api.sock"))
	if code != 0 || strings.Contains(out+errOut, "S3cretPW") || !strings.Contains(out, "gwuser:***@") {
		t.Fatalf("tidegate status (exit %d):\n%s%s", code, out, errOut)
	}

	// A broker nobody can reach: rolled back within 20 s (and a margin),
	// announced once connected again.
	unreachable := strings.Replace(string(text), broker, "tcp://127.0.0.1:1", 1)
	t0 := time.Now()
	if r := push("c-dead", h2, unreachable); r["ok"] != true || r["result"].(map[string]any)["rollback_after"] != "20s" {
		t.Fatalf("config with an unreachable broker: %v", r)
	}
	eventually(t, 60*time.Second, "config_rolled_back event at the receiver", func() bool {
		for _, l := range receiverLines(rx) {
			if rec, _ := l["record"].(map[string]any); rec["type"] == "config_rolled_back" {
				return rec["attrs"].(map[string]any)["to"] == h2
			}
		}
		return false
	})
	if took := time.Since(t0); took < 20*time.Second {
		t.Errorf("rolled back after %s, before mqtt.config_rollback_after (20s)", took)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != string(text) {
		t.Errorf("config file after the rollback is not the last good one:\n%s", b)
	}
	s, err = status(t, filepath.Join(dir, "api.sock"))
	if err != nil || s.ConfigHash != h2 {
		t.Fatalf("after the rollback, running %v (%v), want %s", s.ConfigHash, err, h2)
	}
}
