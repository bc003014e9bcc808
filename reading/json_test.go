package reading

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Values as the meter resolves them: the two, a scaled decimal
// register, a difference of two totals, and what must stay as it is.
func TestRound(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{0.39499999999999996, 0.395},
		{float64(float32(0.106)), 0.106}, // 0.10599999874830246: a float32 register
		{1234567 * 0.001, 1234.567},
		{1234.568 - 1234.567, 0.001},
		{12345.678, 12345.678},
		{-1.5, -1.5},
		{0, 0},
		{1e-12, 1e-12}, // below a nanounit: kept, not made zero
	} {
		if got := Round(c.in); got != c.want {
			t.Errorf("Round(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// The one encoding: snake_case, no zero times, rounded values, absent what
// the meter did not supply. (Before: buffer export wrote CamelCase keys and
// "MeterTime":"0001-01-01T00:00:00Z"; payloads carried 0.39499999999999996.)
func TestToJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.FixedZone("x", 3600))
	r := Record{Seq: 7, Kind: KindReading, Reading: &Reading{Meter: "m1", Received: at,
		Has: HasForward | HasFlow | HasMeterTime, Forward: 0.39499999999999996, Flow: float64(float32(0.106)),
		Filter: &Filtered{Consumption: 1234.568 - 1234.567}}}
	b, err := json.Marshal(ToJSON("gw", r))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"id":"gw:7"`, `"seq":7`, `"kind":"reading"`, `"gateway_time":"2026-11-23T01:00:00Z"`,
		`"forward_m3":0.395`, `"flow_m3h":0.106`, `"consumption_m3":0.001`, `"flags":[]`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	for _, not := range []string{"meter_time", "0001-01-01", "Meter", "start"} {
		if strings.Contains(s, not) {
			t.Errorf("%s has %s", s, not)
		}
	}
	ev, _ := json.Marshal(ToJSON("", Record{Seq: 3, Kind: KindEvent, Event: &Event{Type: "buffer_undecodable"}}))
	if s := string(ev); strings.Contains(s, `"time"`) || strings.Contains(s, `"id"`) || !strings.Contains(s, `"type":"buffer_undecodable"`) {
		t.Errorf("event without a time: %s", s)
	}
}

// meter_time says which offset the meter's clock was placed at; the
// gateway's own time stays UTC.
func TestMeterTimeOffset(t *testing.T) {
	cest := time.FixedZone("CEST", 2*3600)
	r := Reading{Meter: "m1", Received: time.Date(2026, 10, 25, 0, 30, 5, 0, time.UTC),
		MeterTime: time.Date(2026, 10, 25, 2, 30, 0, 0, cest), Has: HasForward | HasMeterTime, Forward: 1}
	b, err := json.Marshal(ToJSON("gw", Record{Kind: KindReading, Reading: &r}))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"meter_time":"2026-10-25T02:30:00+02:00"`) || !strings.Contains(s, `"gateway_time":"2026-10-25T00:30:05Z"`) {
		t.Fatalf("%s: want meter_time with +02:00, gateway_time in UTC", s)
	}
}
