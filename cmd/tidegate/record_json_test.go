package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/cmd/tidegate/internal/daemon"
	"tidegate/reading"
	"tidegate/simulator"
)

// TestOneRecordEncoding: one record, taken by a real daemon from a simulated
// CJ/T 188 meter, leaves by five ways — the uplink's readings batch at a
// real broker, `tidegate tail --json`, GET /v1/readings, GET /v1/status's
// "last" and, once the daemon stopped, `tidegate buffer export` — as the
// same JSON object, byte for byte once whitespace is compacted. A live read (`tidegate read --json`, and the downlink's read
// command) has the same keys but seq and id, which only a stored record
// has. No zero time and no CamelCase key anywhere. (Before: the control API
// and `read --json` had a shape of their own: "time" for gateway_time, the
// filter's verdict and a summary flattened, "event" for type, no id.)
func TestOneRecordEncoding(t *testing.T) {
	// At 600× a 3 m³/h leak moves the total by about 0.5 m³ between polls:
	// the meter's BCD hundredths scaled to m³ carry binary noise that every
	// way out must round alike.
	simCfg, err := simulator.ParseConfig("../../configs/sim/encoding.yaml", []byte(`speed: 600
buses:
  - name: cj
    protocol: cjt188
    meters:
      - {id: cj-1, address: "78330011223344", water: {profile: vacant, leaks: [{rate_lh: 3000}]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.Start(context.Background(), simCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	dev := sim.Ports()["cj"].Device
	br := startTestBroker(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	buses := "  - {name: cj, protocol: cjt188, device: " + dev + ", preamble: 3, timeout: 1s}\n"
	// Polled every 2 s: the stored record stays the meter's last reading
	// for a while, long enough to be asked for.
	meters := "  - {id: cj-1, bus: cj, address: \"78330011223344\", poll: {flow: 2s, totals: 2s}}\n"
	text := e2eConfig(dir, br.addr, buses, meters)
	// Without the filter the record stored is the poll the API shows as the
	// meter's last (with it, the API shows the newest raw poll while the
	// filter holds the stored ones back).
	text = strings.Replace(text, "filter: {window: 2s}", "filter: {enabled: false}", 1)
	text = strings.Replace(text, "buffer: {path: ", "buffer: {commit_latency: 100ms, path: ", 1)
	// Acks by the receiver, which sends none here: what was sent stays in
	// the buffer for `buffer export`.
	text = strings.Replace(text, "topic_prefix: e2e,", "topic_prefix: e2e, commands: true, ack: application,", 1)
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	d := daemon.New(daemon.Options{Config: cfg, ConfigPath: cfgPath, Version: "t", Log: daemon.NewLogger(logs, "info", "json")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	stopDaemon := sync.OnceFunc(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("daemon log:\n%s", tailLines(logs.String(), 30))
		}
	})
	defer stopDaemon()
	eventually(t, 10*time.Second, "the daemon answers on its socket", func() bool {
		_, err := status(t, sock)
		return err == nil
	})

	tailOut := &lockedBuffer{}
	tailCtx, stopTail := context.WithCancel(context.Background())
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		dispatch(tailCtx, &env{stdin: strings.NewReader(""), stdout: tailOut, stderr: io.Discard},
			[]string{"tail", "--json", "--socket", sock})
	}()
	endTail := sync.OnceFunc(func() { stopTail(); <-tailDone })
	defer endTail()

	api := newAPIClient(sock)
	get := func(path string, v any) {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := api.getJSON(c, "GET", path, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	// The ways out, each as compacted JSON objects by id.
	uplinkByID := func() map[string]string {
		out := map[string]string{}
		for _, m := range br.messages() {
			if !strings.HasSuffix(m.topic, "/readings") {
				continue
			}
			var doc struct{ Batch []json.RawMessage }
			if json.Unmarshal([]byte(m.payload), &doc) != nil {
				continue
			}
			for _, raw := range doc.Batch {
				out[idOf(t, raw)] = compact(t, raw)
			}
		}
		return out
	}
	tailByID := func() map[string]string {
		out := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(tailOut.String()), "\n") {
			if l != "" {
				out[idOf(t, []byte(l))] = l // as the daemon streamed it, not compacted
			}
		}
		return out
	}

	var fromReadings, fromStatus, fromUplink, fromTail string
	deadline := time.Now().Add(40 * time.Second)
	for {
		var rs []json.RawMessage
		get("/v1/readings", &rs)
		var st struct {
			Meters []struct{ Last json.RawMessage }
		}
		get("/v1/status", &st)
		if len(rs) == 1 && len(st.Meters) == 1 {
			fromReadings, fromStatus = compact(t, rs[0]), compact(t, st.Meters[0].Last)
			id := idOf(t, rs[0])
			fromUplink, fromTail = uplinkByID()[id], tailByID()[id]
			if id != "" && idOf(t, st.Meters[0].Last) == id && fromUplink != "" && fromTail != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record seen the same way by the API, tail and the uplink within 40 s:\n/v1/readings %s\n/v1/status last %s\nuplink %v\ntail %s",
				fromReadings, fromStatus, uplinkByID(), tailOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the record: %s", fromUplink)
	for name, got := range map[string]string{"/v1/readings": fromReadings, "/v1/status last": fromStatus, "tail --json": fromTail} {
		if got != fromUplink {
			t.Errorf("%s differs from the uplink's payload:\n got %s\nwant %s", name, got, fromUplink)
		}
	}
	for _, want := range []string{`"kind":"reading"`, `"meter":"cj-1"`, `"gateway_time":`, `"meter_time":`, `"forward_m3":`, `"seq":`} {
		if !strings.Contains(fromUplink, want) {
			t.Errorf("the record lacks %s: %s", want, fromUplink)
		}
	}

	// A live read, through the daemon and over the downlink: the same keys
	// as the stored record, but seq and id.
	code, out, errOut := runCmd(t, "", "read", "cj-1", "--json", "--socket", sock)
	if code != exitOK || strings.Count(out, "\n") != 1 {
		t.Fatalf("read --json: exit %d\n%s%s", code, out, errOut)
	}
	br.srv.Publish("e2e/v1/gw-e2e/cmd/read", []byte(`{"id":"r-1","command":"read","meter":"cj-1"}`), false, 1)
	var downlink string
	eventually(t, 20*time.Second, "the downlink read's result", func() bool {
		for _, m := range br.messages() {
			if m.topic == "e2e/v1/gw-e2e/cmd/r-1/result" {
				var res struct{ Result json.RawMessage }
				if json.Unmarshal([]byte(m.payload), &res) == nil {
					downlink = compact(t, res.Result)
					return true
				}
			}
		}
		return false
	})
	t.Logf("read --json: %s", strings.TrimSpace(out))
	stored := keysOf(t, fromUplink)
	delete(stored, "id")
	delete(stored, "seq")
	for name, got := range map[string]string{"read --json": out, "downlink read": downlink} {
		if k := keysOf(t, got); !sameKeys(k, stored) {
			t.Errorf("%s has keys %v, the stored record %v:\n%s", name, sorted(k), sorted(stored), got)
		}
	}

	// The human-readable read renders from the same value.
	code, human, errOut := runCmd(t, "", "read", "cj-1", "--socket", sock)
	if code != exitOK || !regexp.MustCompile(`(?m)^forward +\d+\.\d{4} m3$`).MatchString(human) || !strings.Contains(human, "meter time") {
		t.Errorf("read: exit %d\n%s%s", code, human, errOut)
	}

	endTail()
	// The file, once the daemon has let go of it, exports the same record.
	stopDaemon()
	seq := strings.TrimPrefix(idOf(t, []byte(fromUplink)), "gw-e2e:")
	code, exported, errOut := runCmd(t, "", "buffer", "export", "--config", cfgPath, "--from", seq, "--to", seq)
	if code != exitOK || strings.TrimSuffix(exported, "\n") != fromUplink {
		t.Errorf("buffer export: exit %d\n got %s\nwant %s\n%s", code, exported, fromUplink, errOut)
	}
	for _, s := range append([]string{fromUplink, out, downlink}, strings.Split(strings.TrimSpace(tailOut.String()), "\n")...) {
		checkSnakeNoZeroTime(t, s)
	}
}

// TestPrintReadingIsTheRecord: `read --json` prints the record's one
// encoding, byte for byte what json.Marshal makes of reading.ToJSON (what
// the uplink sends), and the table shows the same rounded values.
func TestPrintReadingIsTheRecord(t *testing.T) {
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	r := reading.Reading{Meter: "m1", Received: at, Has: reading.HasForward | reading.HasFlow | reading.HasBattery,
		Forward: 0.39499999999999996, Flow: float64(float32(0.106)), BatteryMV: 3600, Status: reading.StatusLeak}
	want, err := json.Marshal(reading.ToJSON("", reading.Record{Kind: reading.KindReading, Reading: &r}))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := printReading(&b, liveRecord(&r), true); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(b.String(), "\n"); got != string(want) {
		t.Errorf("read --json\n got %s\nwant %s", got, want)
	}
	checkSnakeNoZeroTime(t, b.String())
	b.Reset()
	if err := printReading(&b, liveRecord(&r), false); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`forward +0\.3950 m3`, `flow +0\.1060 m3/h`, `battery +3600 mV`, `status +leak`} {
		if !regexp.MustCompile(`(?m)^` + w + `$`).MatchString(b.String()) {
			t.Errorf("read table lacks %q:\n%s", w, b.String())
		}
	}
	if strings.Contains(b.String(), "meter time") {
		t.Errorf("a reading without a meter clock shows one:\n%s", b.String())
	}
}

func compact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	return b.String()
}

func idOf(t *testing.T, raw []byte) string {
	t.Helper()
	var v struct{ ID string }
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	return v.ID
}

func keysOf(t *testing.T, s string) map[string]bool {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, s)
	}
	k := map[string]bool{}
	for key := range m {
		k[key] = true
	}
	return k
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func sorted(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkSnakeNoZeroTime fails on a key that is not snake_case, at any depth
// (attrs are the meter's own words and exempt), and on a zero time.
func checkSnakeNoZeroTime(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "0001-01-01") {
		t.Errorf("a zero time: %s", s)
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !snakeKey.MatchString(k) {
					t.Errorf("key %q is not snake_case: %s", k, s)
				}
				if k != "attrs" {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}
