// Package reading defines the values that flow through tidegate:
// drivers → filter → buffer → uplink. It has no behaviour beyond small
// helpers, so every stage can depend on it without depending on another stage.
package reading

import "time"

// Quality says how far a reading can be trusted.
type Quality uint8

const (
	// QualityGood: the meter answered, the frame checked out and decoded.
	QualityGood Quality = iota
	// QualityStale: values are the last good ones, repeated because the meter did not answer.
	QualityStale
	// QualityError: the poll failed; Error says why and the values are not to be used.
	QualityError
	// QualityImplausible: the meter answered, but with values it cannot
	// physically show (Error says which): a wrong profile or address. The
	// values are kept for the technician and not counted.
	QualityImplausible
)

func (q Quality) String() string {
	switch q {
	case QualityGood:
		return "good"
	case QualityStale:
		return "stale"
	case QualityError:
		return "error"
	case QualityImplausible:
		return "implausible"
	}
	return "unknown"
}

// Status is the set of alarm bits a meter reports about itself, mapped from
// each protocol's own bits by the driver.
type Status uint16

const (
	StatusReverseFlow Status = 1 << iota
	StatusLeak
	StatusBurst
	StatusEmptyPipe
	StatusLowBattery
	StatusTamper
	StatusMeterError
	StatusValveClosed // the meter's shut-off valve is closed (CJ/T 188 status word)
)

var statusNames = [...]string{"reverse_flow", "leak", "burst", "empty_pipe", "low_battery", "tamper", "meter_error", "valve_closed"}

// Names lists the set bits in a fixed order, for JSON and logs.
func (s Status) Names() []string {
	var out []string
	for i, n := range statusNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Field marks which optional values of a Reading the meter supplied. A meter
// that has no reverse register is different from one that reports zero.
type Field uint16

const (
	HasForward Field = 1 << iota
	HasReverse
	HasNet
	HasFlow
	HasTemperature
	HasMeterTime
	HasBattery
)

// Reading is what leaves a driver: one poll of one meter. Protocol specifics
// end at the driver; everything after it sees only this.
type Reading struct {
	Meter     string    // configured meter id
	Received  time.Time // gateway clock when the answer was complete
	MeterTime time.Time // meter's own clock, valid when Has&HasMeterTime

	Has         Field
	Forward     float64 // cumulative forward volume, m3
	Reverse     float64 // cumulative reverse volume, m3
	Net         float64 // cumulative net volume as the meter reports it, m3
	Flow        float64 // instantaneous flow, m3/h, negative when reverse
	Temperature float64 // water temperature, degC
	BatteryMV   uint16  // battery voltage, mV

	Status  Status
	Quality Quality
	Error   string // why Quality is not good
	Raw     []byte // the answer's bytes, only when asked for

	// Storage 0 is the meter's current values. Storage 1 is what the meter
	// itself froze at its last due date (M-Bus storage number 1, the
	// billing value of many meters); MeterTime is then that date. Such a
	// reading travels as a billing record beside the current one and is
	// never an interval of use.
	Storage uint8

	// Filter is set by the self-rotation filter; nil before that stage.
	Filter *Filtered
}

// FilterFlags are the filter's conclusions about an interval or a day.
type FilterFlags uint16

const (
	FlagSelfRotation FilterFlags = 1 << iota
	FlagLeak
	FlagBurst
	FlagBackflow
	FlagNoUse
	FlagMeterFault
)

var filterFlagNames = [...]string{"self_rotation", "leak", "burst", "backflow", "no_use", "meter_fault"}

// Names lists the set flags in a fixed order.
func (f FilterFlags) Names() []string {
	var out []string
	for i, n := range filterFlagNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Filtered is the self-rotation filter's verdict on the interval that ends at
// a reading. Raw totals are never altered; these travel beside them.
type Filtered struct {
	Start       time.Time // start of the interval (the previous reading's time)
	Consumption float64   // real use in the interval, m3
	Reverse     float64   // real backflow in the interval, m3
	Phantom     float64   // self-rotation volume removed, m3
	Flags       FilterFlags
}

// DailySummary is one meter's local day, for the profiling service's tags.
type DailySummary struct {
	Meter        string
	Day          string // local date, YYYY-MM-DD
	Consumption  float64
	Phantom      float64
	Backflow     float64
	MinNightFlow float64 // m3/h, 02–04 h local
	PeakFlow     float64 // m3/h
	HoursWithUse int
	Flags        FilterFlags
}

// Event is something that happened once: a leak found, a meter gone offline,
// a range of buffered records evicted.
type Event struct {
	Time    time.Time
	Meter   string // empty for gateway-wide events
	Type    string // e.g. "leak", "burst", "backflow", "clock_step", "self_rotation", "no_use", "meter_offline", "meter_online", "buffer_evicted"
	Message string
	Attrs   map[string]string
}

// Kind tells which payload a Record carries, and so its eviction priority.
type Kind uint8

const (
	KindReading Kind = iota + 1 // interval reading: thinned first when the buffer is full
	KindBilling                 // guaranteed daily billing read: kept long
	KindSummary                 // daily summary: kept long
	KindEvent                   // events: kept longest, sent ahead of a backlog
)

func (k Kind) String() string {
	switch k {
	case KindReading:
		return "reading"
	case KindBilling:
		return "billing"
	case KindSummary:
		return "summary"
	case KindEvent:
		return "event"
	}
	return "unknown"
}

// Record is the unit the buffer stores and the uplink sends. Seq is assigned
// by the buffer; with the gateway id it forms the id receivers deduplicate on.
type Record struct {
	Seq     uint64
	Kind    Kind
	Reading *Reading      // KindReading, KindBilling
	Summary *DailySummary // KindSummary
	Event   *Event        // KindEvent
}
