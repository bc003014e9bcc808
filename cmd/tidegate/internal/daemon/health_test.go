package daemon

import (
	"errors"
	"testing"
	"time"

	"tidegate/reading"
)

type fakeClock ClockState

func (f fakeClock) State() ClockState { return ClockState(f) }

// The health the daemon publishes: a meter offline with the reason its
// offline event gave, the gateway clock's state, a meter's clock offset,
// the running config's hash.
func TestHealthContent(t *testing.T) {
	d, _ := startRemoteDaemon(t, "allow")
	d.mu.Lock()
	d.clock = fakeClock{Synchronised: false, Err: errors.New("adjtimex: not permitted")}
	d.mu.Unlock()
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	d.ingest(reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: at, Meter: "m1", Type: "meter_offline", Message: "5 polls unanswered: timeout"}})
	waitFor(t, func() bool { return d.hub.stateOf("m1") == "offline" })
	h := d.health()
	if len(h.MetersOffline) != 1 || h.MetersOffline[0].Meter != "m1" || h.MetersOffline[0].Reason != "5 polls unanswered: timeout" || !h.MetersOffline[0].Since.Equal(at) {
		t.Fatalf("meters offline: %+v", h.MetersOffline)
	}
	if h.Clock.Synchronised || h.Clock.Error == "" || h.ConfigHash != d.config().Hash || len(h.Buses) != 2 || h.Buffer.DiskFreeBytes == 0 {
		t.Fatalf("health: %+v", h)
	}
	now := time.Now()
	d.ingest(reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m1", Received: now, Has: reading.HasForward | reading.HasMeterTime, Forward: 1, MeterTime: now.Add(10 * time.Minute)}})
	waitFor(t, func() bool { return d.hub.stateOf("m1") == "online" })
	d.mu.Lock()
	d.clock = fakeClock{Synchronised: true}
	d.mu.Unlock()
	h = d.health()
	if len(h.MetersOffline) != 0 || !h.Clock.Synchronised || len(h.Clock.MeterOffsets) != 1 || h.Clock.MeterOffsets[0].OffsetS != 600 {
		t.Fatalf("after m1 answered: offline %+v clock %+v", h.MetersOffline, h.Clock)
	}
}
