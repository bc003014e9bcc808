package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"tidegate/reading"
)

// checkSchema is a small hand-written JSON Schema check: type, enum,
// required, properties (keys not documented are errors, so the schema
// cannot drift from the code), additionalProperties and items. It returns
// one line per violation.
func checkSchema(s map[string]any, v any, path string) []string {
	var errs []string
	if t, ok := s["type"].(string); ok && !jsonType(t, v) {
		return []string{fmt.Sprintf("%s: %T is not %s", path, v, t)}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v not in %v", path, v, enum))
	}
	if obj, ok := v.(map[string]any); ok {
		for _, r := range asList(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required %q missing", path, r))
			}
		}
		props, _ := s["properties"].(map[string]any)
		extra, _ := s["additionalProperties"].(map[string]any)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch ps, ok := props[k].(map[string]any); {
			case ok:
				errs = append(errs, checkSchema(ps, obj[k], path+"."+k)...)
			case extra != nil:
				errs = append(errs, checkSchema(extra, obj[k], path+"."+k)...)
			case props != nil:
				errs = append(errs, fmt.Sprintf("%s: key %q is not in the schema", path, k))
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if is, ok := s["items"].(map[string]any); ok {
			for i, e := range arr {
				errs = append(errs, checkSchema(is, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func asList(v any) []any { l, _ := v.([]any); return l }

func jsonType(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "boolean":
		_, ok := v.(bool)
		return ok
	}
	return false
}

func loadSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("schema/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// The checker itself must catch what it claims to.
func TestCheckSchemaCatches(t *testing.T) {
	s := loadSchema(t, "readings.schema.json")
	for _, tc := range []struct{ name, doc, want string }{
		{"missing required", `{"gateway":"g"}`, `required "batch"`},
		{"wrong type", `{"gateway":1,"batch":[]}`, "is not string"},
		{"undocumented key", `{"gateway":"g","batch":[],"x":1}`, `key "x"`},
		{"bad enum", `{"gateway":"g","batch":[{"id":"g:1","seq":1,"kind":"weird","meter":"m"}]}`, "not in"},
		{"integer", `{"gateway":"g","batch":[{"id":"g:1","seq":1.5,"kind":"reading","meter":"m"}]}`, "is not integer"},
	} {
		var v any
		json.Unmarshal([]byte(tc.doc), &v)
		errs := checkSchema(s, v, "$")
		if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
			t.Errorf("%s: errors %q, want one with %q", tc.name, errs, tc.want)
		}
	}
}

// TestPayloadsMatchSchema sends every kind of record through a real broker
// and checks each message the subscriber gets against schema/.
func TestPayloadsMatchSchema(t *testing.T) {
	br := startMochi(t)
	q := openBuffer(t)
	now := time.Now()
	old := now.Add(-48 * time.Hour)
	full := testReading("m-001", 1, now)
	bare := reading.Record{Kind: reading.KindBilling, Reading: &reading.Reading{Meter: "m-002", Received: old, Storage: 1,
		Has: reading.HasForward | reading.HasMeterTime, Forward: 12.345, MeterTime: old.Truncate(24 * time.Hour)}}
	bad := reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m-003", Received: now,
		Quality: reading.QualityError, Error: "timeout", Has: reading.HasBattery, BatteryMV: 3600}}
	sum := reading.Record{Kind: reading.KindSummary, Summary: &reading.DailySummary{Meter: "m-001", Day: "2026-11-22",
		Consumption: 0.4, Phantom: 0.01, MinNightFlow: 0.002, PeakFlow: 1.2, HoursWithUse: 9, Flags: reading.FlagLeak | reading.FlagNoUse}}
	ev := testEvent("leak")
	gwEv := reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: old, Type: "buffer_evicted"}}
	if _, err := q.Append(context.Background(), full, bare, ev, bad, sum, gwEv); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, br.URL(), "test")
	u, err := New(testConfig(br.URL()), q, quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	u.cfg.Status = func() StatusInfo {
		return StatusInfo{Version: "1.2.3", ConfigHash: "abc", Meters: []string{"m-001"}, Buses: []string{"rs485-1"}}
	}
	stop := startUplink(t, u)
	waitFor(t, 10*time.Second, "all delivered", func() bool { return q.Cursor() == 6 })
	stop()
	waitFor(t, 5*time.Second, "offline status", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.status) >= 2
	})

	schemas := map[string]map[string]any{
		"test/v1/gw1/readings": loadSchema(t, "readings.schema.json"),
		"test/v1/gw1/events":   loadSchema(t, "event.schema.json"),
		"test/v1/gw1/status":   loadSchema(t, "status.schema.json"),
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var n int
	var all strings.Builder
	for topic, s := range schemas {
		if len(sub.payloads[topic]) == 0 {
			t.Errorf("nothing on %s", topic)
		}
		for _, p := range sub.payloads[topic] {
			var v any
			if err := json.Unmarshal(p, &v); err != nil {
				t.Fatalf("%s: not JSON: %v", topic, err)
			}
			for _, e := range checkSchema(s, v, topic) {
				t.Error(e)
			}
			all.Write(p)
			n++
		}
	}
	// The contract's content, not only its shape.
	for _, want := range []string{`"id":"gw1:1"`, `"kind":"billing"`, `"historical":true`, `"phantom_m3":0.0002`,
		`"flags":["self_rotation"]`, `"status":["leak"]`, `"quality":"error"`, `"error":"timeout"`, `"battery_mv":3600`,
		`"summary":{"day":"2026-11-22"`, `"type":"leak"`, `"type":"buffer_evicted"`, `"version":"1.2.3"`,
		`"buses":["rs485-1"]`, `"state":"offline"`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no payload contains %s", want)
		}
	}
	if strings.Count(all.String(), `"historical":true`) != 2 {
		t.Errorf("want exactly the 48 h old billing read and event marked historical")
	}
	t.Logf("%d payloads checked", n)
}
