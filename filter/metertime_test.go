package filter

import (
	"testing"
	"time"

	"tidegate/reading"
)

// The filter measures intervals on the meter's own clock where a reading
// carries it: a meter whose clock runs 60× the gateway's (a simulator's
// accelerated time) using 1.2 m3/h by its clock is use, not a total faster
// than the pipe (72 m3/h by the gateway's clock would be a meter fault).
func TestMeterTimeIsTheIntervalClock(t *testing.T) {
	f := New(Config{Window: time.Minute})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var out Output
	for i := 0; i <= 30; i++ {
		f.PushTo(&out, reading.Reading{
			Meter: "m", Quality: reading.QualityGood, Has: reading.HasForward | reading.HasReverse | reading.HasMeterTime,
			Received:  t0.Add(time.Duration(i) * time.Second),
			MeterTime: t0.Add(time.Duration(i) * time.Minute),
			Forward:   100 + 0.02*float64(i), // 20 L a minute = 1.2 m3/h
		})
	}
	o := f.Flush()
	out.Readings = append(out.Readings, o.Readings...)
	var use float64
	for _, r := range out.Readings {
		if r.Filter.Flags&reading.FlagMeterFault != 0 {
			t.Fatalf("interval ending %v flagged meter_fault", r.MeterTime)
		}
		use += r.Filter.Consumption
	}
	if use < 0.59 || use > 0.61 {
		t.Errorf("use %.4f m3, want 0.6", use)
	}
}
