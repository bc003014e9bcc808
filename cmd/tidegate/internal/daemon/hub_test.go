package daemon

import (
	"encoding/json"
	"testing"
	"time"

	"tidegate/reading"
)

// The meter's last reading is the record's one encoding of the newest
// reading: a poll as it arrived (no seq yet) is replaced by the same reading
// stored (seq and id), and a reading the filter held back, older, replaces
// neither. Followers get every record in the same encoding.
func TestHubLastIsTheRecord(t *testing.T) {
	h := newHub()
	h.gateway = "gw"
	ch, stop := h.subscribe("m1")
	defer stop()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	poll := &reading.Reading{Meter: "m1", Received: at, Has: reading.HasForward | reading.HasBattery, Forward: 0.39499999999999996, BatteryMV: 3600}
	heldBack := &reading.Reading{Meter: "m1", Received: at.Add(-time.Minute), Has: reading.HasForward, Forward: 0.3,
		Filter: &reading.Filtered{Consumption: 0.001, Flags: reading.FlagLeak}}
	stored := reading.Record{Seq: 7, Kind: reading.KindReading, Reading: poll}
	for _, rec := range []reading.Record{
		{Kind: reading.KindReading, Reading: poll},
		stored,
		{Seq: 6, Kind: reading.KindReading, Reading: heldBack},
		{Seq: 8, Kind: reading.KindEvent, Event: &reading.Event{Meter: "m1", Time: at, Type: "meter_offline"}},
	} {
		h.publish(rec)
		got, _ := json.Marshal(<-ch)
		if want, _ := json.Marshal(reading.ToJSON("gw", rec)); string(got) != string(want) {
			t.Errorf("follower got %s, want %s", got, want)
		}
	}
	last, ok := h.lastOf("m1")
	got, _ := json.Marshal(last)
	want, _ := json.Marshal(reading.ToJSON("gw", stored))
	if !ok || string(got) != string(want) {
		t.Errorf("last reading %s, want the stored poll %s", got, want)
	}
	if s := h.stateOf("m1"); s != "offline" {
		t.Errorf("state after meter_offline: %s", s)
	}
}
