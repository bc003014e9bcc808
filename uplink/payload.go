package uplink

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"tidegate/reading"
)

// The wire contract; schema/*.json documents it and payload_test.go checks
// that what is produced here matches the schema's required keys and types.

type wireFilter struct {
	Start       *time.Time `json:"start,omitempty"`
	Consumption float64    `json:"consumption_m3"`
	Reverse     float64    `json:"reverse_m3"`
	Phantom     float64    `json:"phantom_m3"`
	Flags       []string   `json:"flags"`
}

type wireSummary struct {
	Day          string   `json:"day"`
	Consumption  float64  `json:"consumption_m3"`
	Phantom      float64  `json:"phantom_m3"`
	Backflow     float64  `json:"backflow_m3"`
	MinNightFlow float64  `json:"min_night_flow_m3h"`
	PeakFlow     float64  `json:"peak_flow_m3h"`
	HoursWithUse int      `json:"hours_with_use"`
	Flags        []string `json:"flags"`
}

type wireRecord struct {
	ID          string       `json:"id"`
	Seq         uint64       `json:"seq"`
	Kind        string       `json:"kind"`
	Meter       string       `json:"meter"`
	GatewayTime *time.Time   `json:"gateway_time,omitempty"`
	MeterTime   *time.Time   `json:"meter_time,omitempty"`
	Forward     *float64     `json:"forward_m3,omitempty"`
	Reverse     *float64     `json:"reverse_m3,omitempty"`
	Net         *float64     `json:"net_m3,omitempty"`
	Flow        *float64     `json:"flow_m3h,omitempty"`
	Temperature *float64     `json:"temperature_c,omitempty"`
	BatteryMV   *uint16      `json:"battery_mv,omitempty"`
	Status      []string     `json:"status,omitempty"`
	Quality     string       `json:"quality,omitempty"`
	Error       string       `json:"error,omitempty"`
	Storage     uint8        `json:"storage,omitempty"`
	Filter      *wireFilter  `json:"filter,omitempty"`
	Summary     *wireSummary `json:"summary,omitempty"`
	Historical  bool         `json:"historical,omitempty"`
}

type wireEvent struct {
	Gateway    string            `json:"gateway"`
	ID         string            `json:"id"`
	Seq        uint64            `json:"seq"`
	Time       time.Time         `json:"time"`
	Meter      string            `json:"meter,omitempty"`
	Type       string            `json:"type"`
	Message    string            `json:"message,omitempty"`
	Attrs      map[string]string `json:"attrs,omitempty"`
	Historical bool              `json:"historical,omitempty"`
}

type wireStatus struct {
	Gateway string    `json:"gateway"`
	State   string    `json:"state"` // online | offline
	Time    time.Time `json:"time"`
	StatusInfo
}

func recordID(gateway string, seq uint64) string {
	return gateway + ":" + strconv.FormatUint(seq, 10)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// encodeRecord renders one reading, billing read or summary as an element of
// a readings batch. now decides "historical".
func encodeRecord(gateway string, r reading.Record, now time.Time, historicalAfter time.Duration) ([]byte, error) {
	w := wireRecord{ID: recordID(gateway, r.Seq), Seq: r.Seq, Kind: r.Kind.String()}
	switch {
	case r.Reading != nil:
		rd := r.Reading
		w.Meter = rd.Meter
		if !rd.Received.IsZero() {
			t := rd.Received.UTC()
			w.GatewayTime = &t
			w.Historical = now.Sub(rd.Received) > historicalAfter
		}
		if rd.Has&reading.HasMeterTime != 0 {
			t := rd.MeterTime.UTC()
			w.MeterTime = &t
		}
		opt := func(f reading.Field, v float64) *float64 {
			if rd.Has&f == 0 || !finite(v) {
				return nil // JSON has no NaN or Inf: a value the meter garbled is absent
			}
			return &v
		}
		w.Forward = opt(reading.HasForward, rd.Forward)
		w.Reverse = opt(reading.HasReverse, rd.Reverse)
		w.Net = opt(reading.HasNet, rd.Net)
		w.Flow = opt(reading.HasFlow, rd.Flow)
		w.Temperature = opt(reading.HasTemperature, rd.Temperature)
		if rd.Has&reading.HasBattery != 0 {
			b := rd.BatteryMV
			w.BatteryMV = &b
		}
		w.Status = nonNil(rd.Status.Names())
		w.Quality = rd.Quality.String()
		w.Error = rd.Error
		w.Storage = rd.Storage
		if f := rd.Filter; f != nil {
			wf := &wireFilter{Consumption: f.Consumption, Reverse: f.Reverse, Phantom: f.Phantom, Flags: nonNil(f.Flags.Names())}
			if !f.Start.IsZero() {
				t := f.Start.UTC()
				wf.Start = &t
			}
			w.Filter = wf
		}
	case r.Summary != nil:
		s := r.Summary
		w.Meter = s.Meter
		w.Summary = &wireSummary{Day: s.Day, Consumption: s.Consumption, Phantom: s.Phantom, Backflow: s.Backflow,
			MinNightFlow: s.MinNightFlow, PeakFlow: s.PeakFlow, HoursWithUse: s.HoursWithUse, Flags: nonNil(s.Flags.Names())}
	}
	b, err := json.Marshal(w)
	if err != nil {
		// Never let one record stop the queue (it would come first again
		// after every restart): send what identifies it, and why.
		b, err = json.Marshal(wireRecord{ID: w.ID, Seq: w.Seq, Kind: w.Kind, Meter: w.Meter,
			Quality: reading.QualityError.String(), Error: "not encodable as JSON: " + err.Error()})
	}
	return b, err
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func encodeEvent(gateway string, r reading.Record, now time.Time, historicalAfter time.Duration) ([]byte, error) {
	w := wireEvent{Gateway: gateway, ID: recordID(gateway, r.Seq), Seq: r.Seq}
	if e := r.Event; e != nil {
		w.Time, w.Meter, w.Type, w.Message, w.Attrs = e.Time.UTC(), e.Meter, e.Type, e.Message, e.Attrs
		w.Historical = !e.Time.IsZero() && now.Sub(e.Time) > historicalAfter
	}
	if w.Type == "" {
		w.Type = "unknown"
	}
	b, err := json.Marshal(w)
	if err != nil { // e.g. a time outside years 0-9999: keep the queue moving
		w.Time = time.Time{}
		w.Message = "not encodable as JSON: " + err.Error()
		b, err = json.Marshal(w)
	}
	return b, err
}

// batchHead and batchTail wrap the encoded records of a readings message:
// {"gateway":"gw","batch":[rec,rec,...]}.
func batchHead(gateway string) []byte {
	g, _ := json.Marshal(gateway)
	return append(append([]byte(`{"gateway":`), g...), `,"batch":[`...)
}

const batchTail = "]}"
