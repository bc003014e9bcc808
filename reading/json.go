package reading

import (
	"math"
	"strconv"
	"time"
)

// RecordJSON is the one JSON encoding of a record: the uplink sends it (a
// readings batch's elements, an event message), the control API and
// `tidegate tail` stream it, `tidegate buffer export` writes it. Keys are
// snake_case with units; a value the meter did not supply is absent, not
// zero; times are UTC and absent when unknown; values are as the meter
// resolves them (Round).
type RecordJSON struct {
	ID          string       `json:"id,omitempty"` // gateway:seq, what receivers deduplicate on
	Seq         uint64       `json:"seq,omitempty"`
	Kind        string       `json:"kind"`
	Meter       string       `json:"meter,omitempty"`
	GatewayTime *time.Time   `json:"gateway_time,omitempty"` // when the gateway had the answer
	MeterTime   *time.Time   `json:"meter_time,omitempty"`   // the meter's own clock (for storage 1: its due date)
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
	Filter      *FilterJSON  `json:"filter,omitempty"`
	Summary     *SummaryJSON `json:"summary,omitempty"`

	// Events.
	Time    *time.Time        `json:"time,omitempty"`
	Type    string            `json:"type,omitempty"`
	Message string            `json:"message,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`

	// Historical is set by the uplink for records older than its
	// historical_after when sent: a replayed backlog.
	Historical bool `json:"historical,omitempty"`
}

// FilterJSON is the filter's verdict on the interval ending at a reading.
type FilterJSON struct {
	Start       *time.Time `json:"start,omitempty"`
	Consumption float64    `json:"consumption_m3"`
	Reverse     float64    `json:"reverse_m3"`
	Phantom     float64    `json:"phantom_m3"`
	Flags       []string   `json:"flags"`
}

// SummaryJSON is a daily summary.
type SummaryJSON struct {
	Day          string   `json:"day"`
	Consumption  float64  `json:"consumption_m3"`
	Phantom      float64  `json:"phantom_m3"`
	Backflow     float64  `json:"backflow_m3"`
	MinNightFlow float64  `json:"min_night_flow_m3h"`
	PeakFlow     float64  `json:"peak_flow_m3h"`
	HoursWithUse int      `json:"hours_with_use"`
	Flags        []string `json:"flags"`
}

// ToJSON encodes r. gateway, when known, makes the id; Seq 0 (a poll not
// yet stored) leaves seq and id out.
func ToJSON(gateway string, r Record) RecordJSON {
	j := RecordJSON{Kind: r.Kind.String()}
	if r.Seq != 0 {
		j.Seq = r.Seq
		if gateway != "" {
			j.ID = gateway + ":" + strconv.FormatUint(r.Seq, 10)
		}
	}
	switch {
	case r.Reading != nil:
		rd := r.Reading
		j.Meter = rd.Meter
		j.GatewayTime = utc(rd.Received)
		if rd.Has&HasMeterTime != 0 {
			j.MeterTime = zoned(rd.MeterTime)
		}
		opt := func(f Field, v float64) *float64 {
			if rd.Has&f == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil // JSON has no NaN or Inf: a value the meter garbled is absent
			}
			v = Round(v)
			return &v
		}
		j.Forward = opt(HasForward, rd.Forward)
		j.Reverse = opt(HasReverse, rd.Reverse)
		j.Net = opt(HasNet, rd.Net)
		j.Flow = opt(HasFlow, rd.Flow)
		j.Temperature = opt(HasTemperature, rd.Temperature)
		if rd.Has&HasBattery != 0 {
			b := rd.BatteryMV
			j.BatteryMV = &b
		}
		j.Status = rd.Status.Names()
		j.Quality = rd.Quality.String()
		j.Error = rd.Error
		j.Storage = rd.Storage
		if f := rd.Filter; f != nil {
			j.Filter = &FilterJSON{Start: utc(f.Start), Consumption: Round(f.Consumption), Reverse: Round(f.Reverse),
				Phantom: Round(f.Phantom), Flags: nonNil(f.Flags.Names())}
		}
	case r.Summary != nil:
		s := r.Summary
		j.Meter = s.Meter
		j.Summary = &SummaryJSON{Day: s.Day, Consumption: Round(s.Consumption), Phantom: Round(s.Phantom),
			Backflow: Round(s.Backflow), MinNightFlow: Round(s.MinNightFlow), PeakFlow: Round(s.PeakFlow),
			HoursWithUse: s.HoursWithUse, Flags: nonNil(s.Flags.Names())}
	case r.Event != nil:
		e := r.Event
		j.Meter, j.Time, j.Type, j.Message, j.Attrs = e.Meter, utc(e.Time), e.Type, e.Message, e.Attrs
	}
	return j
}

// zoned keeps the offset the meter's zone gave its clock: meter_time says
// which offset it used.
func zoned(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Round gives v with the digits the meter resolves and none of the binary
// noise around them. A value that is exactly a float32 came from a meter's
// IEEE 754 single register and has its 7 digits (0.10599999874830246 is
// 0.106); any other is a decimal register scaled, a sum or a difference of
// such, and has at most 12 significant digits and 9 decimals (0.39499999999999996
// is 0.395; a 0.001 m³ step between two totals in the thousands stays
// 0.001). A meter's finest step is a millilitre, 1e-6 m³.
func Round(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	if float64(float32(v)) == v {
		f, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', -1, 32), 64)
		if err == nil {
			return f
		}
		return v
	}
	f, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 9, 64), 64)
	if err != nil {
		return v
	}
	if f == 0 {
		return v // below a nanounit: keep it rather than claim zero
	}
	if f, err = strconv.ParseFloat(strconv.FormatFloat(f, 'g', 12, 64), 64); err != nil {
		return v
	}
	return f
}
