package daemon

import (
	"sync"
	"time"

	"tidegate/reading"
)

// hub keeps what the control API shows about meters (last reading, state) and
// fans records out to `tidegate tail` followers. A slow follower loses
// records (counted) rather than slowing the pipeline: tail is for eyes, the
// buffer is for keeps.
type hub struct {
	mu      sync.Mutex
	last    map[string]lastReading
	state   map[string]string
	offline map[string]reading.Event           // the meter_offline event of a meter offline now: since when, and why
	subs    map[chan reading.RecordJSON]string // channel → meter filter ("" = all)
	gateway string                             // for the records' ids
	dropped uint64
	seen    uint64
}

func newHub() *hub {
	return &hub{last: map[string]lastReading{}, state: map[string]string{}, offline: map[string]reading.Event{}, subs: map[chan reading.RecordJSON]string{}}
}

// lastReading is a meter's last reading in the record's one encoding, with
// the gateway time it was taken at to order it against the next.
type lastReading struct {
	at  time.Time
	rec reading.RecordJSON
}

// publish takes a record the pipeline saw: a poll as it arrived, or a record
// as it was stored. Followers get it in the record's one encoding
// (reading.RecordJSON, as the uplink sends it), and so do /v1/readings and
// /v1/status as the meter's last reading.
func (h *hub) publish(rec reading.Record) {
	if rec.Reading == nil && rec.Event == nil && rec.Summary == nil {
		return
	}
	out := reading.ToJSON(h.gateway, rec)
	meter := out.Meter
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen++
	switch {
	case rec.Reading != nil:
		// A reading the filter held back arrives after newer raw polls: it
		// must not replace them as the meter's last reading. The same
		// reading stored (seq set) replaces its raw poll.
		at := rec.Reading.Received
		if prev, ok := h.last[meter]; !ok || !at.Before(prev.at) {
			h.last[meter] = lastReading{at: at, rec: out}
		}
		if rec.Reading.Quality == reading.QualityGood {
			h.state[meter] = "online"
			delete(h.offline, meter)
		}
	case rec.Event != nil:
		switch rec.Event.Type {
		case "meter_offline":
			h.state[meter] = "offline"
			h.offline[meter] = *rec.Event
		case "meter_online":
			h.state[meter] = "online"
			delete(h.offline, meter)
		}
	}
	for ch, m := range h.subs {
		if m != "" && m != meter {
			continue
		}
		select {
		case ch <- out:
		default:
			h.dropped++
		}
	}
}

func (h *hub) subscribe(meter string) (<-chan reading.RecordJSON, func()) {
	ch := make(chan reading.RecordJSON, 256)
	h.mu.Lock()
	h.subs[ch] = meter
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *hub) lastOf(meter string) (reading.RecordJSON, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.last[meter]
	return l.rec, ok
}

// offlineOf is the event that took a meter offline, if it is offline.
func (h *hub) offlineOf(meter string) (reading.Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.offline[meter]
	return e, ok
}

func (h *hub) stateOf(meter string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.state[meter]; ok {
		return s
	}
	return "waiting"
}

func (h *hub) counts() (seen, dropped uint64, followers int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen, h.dropped, len(h.subs)
}
