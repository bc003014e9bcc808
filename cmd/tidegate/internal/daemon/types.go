package daemon

import (
	"time"

	"tidegate/reading"
)

// The control API's JSON bodies. The technician verbs decode the same types,
// so a field renamed here is renamed on both sides at once.

// Status is GET /v1/status: one screen of health.
type Status struct {
	Gateway    string        `json:"gateway"`
	Version    string        `json:"version"`
	ConfigHash string        `json:"config_hash"`
	Started    time.Time     `json:"started"`
	UptimeS    float64       `json:"uptime_s"`
	Buses      []BusStatus   `json:"buses"`
	Meters     []MeterStatus `json:"meters"`
	Buffer     BufferStatus  `json:"buffer"`
	Broker     BrokerStatus  `json:"broker"`
	Stages     []string      `json:"stages"` // pipeline stages wired in this build, e.g. drivers, filter, buffer, uplink
	Reloads    int           `json:"reloads"`
	LastReload string        `json:"last_reload,omitempty"` // result of the last SIGHUP
}

// BusStatus is one bus's counters.
type BusStatus struct {
	Name       string  `json:"name"`
	Protocol   string  `json:"protocol"`
	Port       string  `json:"port"`
	State      string  `json:"state"` // running, reopening, stopped, not wired
	Requests   uint64  `json:"requests"`
	Answers    uint64  `json:"answers"`
	Timeouts   uint64  `json:"timeouts"`
	CRCErrors  uint64  `json:"crc_errors"`
	Collisions uint64  `json:"collisions"` // several meters answered at once: an address used twice
	Errors     uint64  `json:"errors"`
	Efficiency float64 `json:"efficiency"` // wire time used for answered requests ÷ elapsed, 0..1; or answers/requests when the driver does not time it
	Error      string  `json:"error,omitempty"`
}

// MeterStatus is one meter's state and last reading.
type MeterStatus struct {
	ID     string       `json:"id"`
	Number string       `json:"number,omitempty"`
	Bus    string       `json:"bus"`
	State  string       `json:"state"` // waiting, online, offline
	Last   *ReadingJSON `json:"last,omitempty"`
}

// BufferStatus is the durable queue's depth.
type BufferStatus struct {
	Wired      bool    `json:"wired"`
	Depth      uint64  `json:"depth"`
	OldestAgeS float64 `json:"oldest_age_s"`
	Bytes      int64   `json:"bytes"`
	Evicted    uint64  `json:"evicted"`
}

// BrokerStatus is the uplink's connection.
type BrokerStatus struct {
	Wired     bool   `json:"wired"`
	URL       string `json:"url"`
	Connected bool   `json:"connected"`
	Published uint64 `json:"published"`
	Acked     uint64 `json:"acked"`
	Error     string `json:"error,omitempty"`
}

// ReadingJSON is a reading as the API and `tidegate tail` show it.
type ReadingJSON struct {
	Kind        string    `json:"kind"` // reading, billing, summary, event
	Meter       string    `json:"meter"`
	Time        time.Time `json:"time"`
	MeterTime   time.Time `json:"meter_time,omitzero"`
	Forward     *float64  `json:"forward_m3,omitempty"`
	Reverse     *float64  `json:"reverse_m3,omitempty"`
	Net         *float64  `json:"net_m3,omitempty"`
	Flow        *float64  `json:"flow_m3h,omitempty"`
	Temperature *float64  `json:"temperature_c,omitempty"`
	BatteryMV   uint16    `json:"battery_mv,omitempty"`
	Status      []string  `json:"status,omitempty"`
	Quality     string    `json:"quality,omitempty"`
	Error       string    `json:"error,omitempty"`

	Consumption *float64 `json:"consumption_m3,omitempty"`
	ReverseReal *float64 `json:"backflow_m3,omitempty"`
	Phantom     *float64 `json:"phantom_m3,omitempty"`
	Flags       []string `json:"flags,omitempty"`

	Event   string            `json:"event,omitempty"`
	Message string            `json:"message,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// f64 is a value as the meter resolves it (reading.Round: the same digits
// the uplink sends).
func f64(v float64) *float64 { v = reading.Round(v); return &v }

// FromReading converts a reading; kind is "reading" or "billing".
func FromReading(kind string, r *reading.Reading) ReadingJSON {
	j := ReadingJSON{Kind: kind, Meter: r.Meter, Time: r.Received, Quality: r.Quality.String(), Error: r.Error, Status: r.Status.Names(), BatteryMV: r.BatteryMV}
	if r.Has&reading.HasMeterTime != 0 && !r.MeterTime.IsZero() {
		j.MeterTime = r.MeterTime
	}
	if r.Has&reading.HasForward != 0 {
		j.Forward = f64(r.Forward)
	}
	if r.Has&reading.HasReverse != 0 {
		j.Reverse = f64(r.Reverse)
	}
	if r.Has&reading.HasNet != 0 {
		j.Net = f64(r.Net)
	}
	if r.Has&reading.HasFlow != 0 {
		j.Flow = f64(r.Flow)
	}
	if r.Has&reading.HasTemperature != 0 {
		j.Temperature = f64(r.Temperature)
	}
	if f := r.Filter; f != nil {
		j.Consumption, j.ReverseReal, j.Phantom = f64(f.Consumption), f64(f.Reverse), f64(f.Phantom)
		j.Flags = f.Flags.Names()
	}
	return j
}

// FromEvent converts an event.
func FromEvent(ev *reading.Event) ReadingJSON {
	return ReadingJSON{Kind: "event", Meter: ev.Meter, Time: ev.Time, Event: ev.Type, Message: ev.Message, Attrs: ev.Attrs}
}

// FromSummary converts a daily summary.
func FromSummary(s *reading.DailySummary) ReadingJSON {
	return ReadingJSON{Kind: "summary", Meter: s.Meter, Message: s.Day, Consumption: f64(s.Consumption), Phantom: f64(s.Phantom),
		ReverseReal: f64(s.Backflow), Flow: f64(s.PeakFlow), Flags: s.Flags.Names()}
}

// FromRecord converts whatever a record carries.
func FromRecord(rec reading.Record) (ReadingJSON, bool) {
	switch {
	case rec.Reading != nil:
		return FromReading(rec.Kind.String(), rec.Reading), true
	case rec.Event != nil:
		return FromEvent(rec.Event), true
	case rec.Summary != nil:
		return FromSummary(rec.Summary), true
	}
	return ReadingJSON{}, false
}
