package uplink

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A health message and the retained status that carries it match
// schema/health.schema.json, through a real broker.
func TestHealthMatchesSchema(t *testing.T) {
	br := startMochi(t)
	sub := subscribe(t, br.URL(), "test")
	u, err := New(testConfig(br.URL()), openBuffer(t), quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Hour)
	h := Health{Version: "1.2.3", ConfigHash: "abc", UptimeS: 12.5,
		Buses:         []BusHealth{{Name: "rs485-1", State: "running", Requests: 10, Answers: 8, Timeouts: 2, Error: "timeout"}},
		MetersOffline: []MeterOffline{{Meter: "m-002", Bus: "rs485-1", Since: &since, Reason: "3 polls unanswered"}},
		Buffer:        BufferHealth{Depth: 3, OldestUnsentAgeS: 4.5, Bytes: 32768, DiskFreeBytes: 1 << 30},
		Uplink:        UplinkHealth{LastPublish: &since, Connects: 1},
		Clock:         ClockHealth{Synchronised: true, MaxErrorMS: 12, MeterOffsets: []MeterClockOffset{{Meter: "m-001", OffsetS: -600}}},
	}
	u.cfg.Status = func() StatusInfo { return StatusInfo{Version: "1.2.3", ConfigHash: "abc", Health: &h} }
	startUplink(t, u)
	waitFor(t, 5*time.Second, "connected", u.Connected)
	if err := u.PublishHealth(h); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "health at the broker", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.payloads["test/v1/gw1/health"]) > 0 && len(sub.payloads["test/v1/gw1/status"]) >= 2
	})
	hs, ss := loadSchema(t, "health.schema.json"), loadSchema(t, "status.schema.json")
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var hv map[string]any
	if err := json.Unmarshal(sub.payloads["test/v1/gw1/health"][0], &hv); err != nil {
		t.Fatal(err)
	}
	for _, e := range checkSchema(hs, hv, "health") {
		t.Error(e)
	}
	for _, p := range sub.payloads["test/v1/gw1/status"] {
		var sv map[string]any
		if err := json.Unmarshal(p, &sv); err != nil {
			t.Fatal(err)
		}
		for _, e := range checkSchema(ss, sv, "status") {
			t.Error(e)
		}
		hh, _ := sv["health"].(map[string]any)
		if hh == nil {
			t.Fatalf("status without health: %s", p)
		}
		hh["gateway"], hh["time"] = "gw1", "2026-12-07T00:00:00Z" // the status's health is not stamped
		for _, e := range checkSchema(hs, hh, "status.health") {
			t.Error(e)
		}
	}
	b := string(sub.payloads["test/v1/gw1/health"][0])
	for _, want := range []string{`"gateway":"gw1"`, `"synchronised":true`, `"offset_s":-600`, `"reason":"3 polls unanswered"`, `"disk_free_bytes":1073741824`, `"timeouts":2`} {
		if !strings.Contains(b, want) {
			t.Errorf("health %s lacks %s", b, want)
		}
	}
}
