package uplink

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"tidegate/buffer"
	"tidegate/reading"
)

var _ Queue = (*buffer.Buffer)(nil)

// Values JSON cannot carry must not stop the queue: the record still
// encodes, with what identifies it.
func TestEncodeUnencodable(t *testing.T) {
	now := time.Now()
	nan := reading.Record{Seq: 5, Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m", Received: now,
		Has: reading.HasForward | reading.HasFlow, Forward: math.NaN(), Flow: math.Inf(1)}}
	filt := reading.Record{Seq: 6, Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m", Received: now,
		Filter: &reading.Filtered{Phantom: math.NaN()}}}
	farTime := reading.Record{Seq: 7, Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m",
		Received: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	badEvent := reading.Record{Seq: 8, Kind: reading.KindEvent, Event: &reading.Event{Type: "x",
		Time: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}}
	for _, tc := range []struct {
		name string
		r    reading.Record
		want []string
	}{
		{"NaN and Inf totals omitted", nan, []string{`"id":"gw1:5"`, `"quality":"good"`}},
		{"NaN in filter", filt, []string{`"id":"gw1:6"`, `"quality":"error"`, "not encodable"}},
		{"time past year 9999", farTime, []string{`"id":"gw1:7"`, "not encodable"}},
		{"event time before year 0", badEvent, []string{`"id":"gw1:8"`, "not encodable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := encodeRecord
			if tc.r.Kind == reading.KindEvent {
				enc = encodeEvent
			}
			b, err := enc("gw1", tc.r, now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON %s", b)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
			if strings.Contains(string(b), "forward_m3") || strings.Contains(string(b), "flow_m3h") {
				t.Errorf("non-finite value sent: %s", b)
			}
		})
	}
}

// A due-date value is a billing record with "storage": 1 and the due date
// as meter_time; the current billing read carries no storage key.
func TestEncodeStorage(t *testing.T) {
	due := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		r         reading.Reading
		want, not string
	}{
		{reading.Reading{Meter: "m", Received: due.Add(22 * 24 * time.Hour), Storage: 1, Has: reading.HasForward | reading.HasMeterTime,
			Forward: 12.5, MeterTime: due}, `"meter_time":"2026-11-01T00:00:00Z","forward_m3":12.5,"quality":"good","storage":1`, ""},
		{reading.Reading{Meter: "m", Received: due, Has: reading.HasForward, Forward: 13}, `"forward_m3":13`, `"storage"`},
	} {
		b, err := encodeRecord("gw1", reading.Record{Seq: 1, Kind: reading.KindBilling, Reading: &tc.r}, due, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) || tc.not != "" && strings.Contains(string(b), tc.not) {
			t.Errorf("%s: want %s, not %q", b, tc.want, tc.not)
		}
	}
}
