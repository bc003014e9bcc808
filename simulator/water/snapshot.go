package water

import (
	"time"

	"tidegate/reading"
)

// Snapshot is what a simulated meter's electronics show at one instant: the
// values its registers and telegrams are built from. Totals are as the
// meter's totaliser holds them (quantised to its resolution), not the truth.
type Snapshot struct {
	Time        time.Time      // simulation time of the snapshot
	MeterClock  time.Time      // the meter's own clock, with its drift
	Forward     float64        // registered forward total, m3
	Reverse     float64        // registered reverse total, m3
	Flow        float64        // registered instantaneous flow, m3/h, signed, after the low-flow cut-off
	Temperature float64        // degC
	BatteryMV   uint16         // battery voltage, mV
	Status      reading.Status // alarm bits the meter would raise
}
