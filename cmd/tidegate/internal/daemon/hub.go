package daemon

import (
	"sync"

	"tidegate/reading"
)

// hub keeps what the control API shows about meters (last reading, state) and
// fans records out to `tidegate tail` followers. A slow follower loses
// records (counted) rather than slowing the pipeline: tail is for eyes, the
// buffer is for keeps.
type hub struct {
	mu      sync.Mutex
	last    map[string]ReadingJSON
	state   map[string]string
	subs    map[chan reading.RecordJSON]string // channel → meter filter ("" = all)
	gateway string                             // for the records' ids
	dropped uint64
	seen    uint64
}

func newHub() *hub {
	return &hub{last: map[string]ReadingJSON{}, state: map[string]string{}, subs: map[chan reading.RecordJSON]string{}}
}

// publish takes a record the pipeline saw: a poll as it arrived, or a record
// as it was stored. Followers get it in the record's one encoding
// (reading.RecordJSON, as the uplink sends it).
func (h *hub) publish(rec reading.Record) {
	j, ok := FromRecord(rec)
	if !ok {
		return
	}
	out := reading.ToJSON(h.gateway, rec)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen++
	switch j.Kind {
	case "reading", "billing":
		// A reading the filter held back arrives after newer raw polls: it
		// must not replace them as the meter's last reading.
		if prev, ok := h.last[j.Meter]; !ok || !j.Time.Before(prev.Time) {
			h.last[j.Meter] = j
		}
		if j.Quality == "good" {
			h.state[j.Meter] = "online"
		}
	case "event":
		switch j.Event {
		case "meter_offline":
			h.state[j.Meter] = "offline"
		case "meter_online":
			h.state[j.Meter] = "online"
		}
	}
	for ch, meter := range h.subs {
		if meter != "" && meter != j.Meter {
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

func (h *hub) lastOf(meter string) (ReadingJSON, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.last[meter]
	return j, ok
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
