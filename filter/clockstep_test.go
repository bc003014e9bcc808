package filter

import (
	"math"
	"testing"
	"time"

	"tidegate/reading"
)

// clockRun feeds four days of 5-minute polls of a household's use (more by
// day than by night) through a filter; clock maps each poll's true time to
// the reading's received and meter times (a zero meter time: none). It returns each local day's
// consumption and the clock_step events.
func clockRun(t *testing.T, loc *time.Location, clock func(true time.Time) (recv, meter time.Time)) (map[string]float64, []reading.Event) {
	t.Helper()
	f := New(Config{Location: loc})
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, loc)
	days := map[string]float64{}
	var steps []reading.Event
	collect := func(o Output) {
		for _, d := range o.Days {
			days[d.Day] += d.Consumption
		}
		for _, e := range o.Events {
			if e.Type == "clock_step" {
				steps = append(steps, e)
			}
		}
	}
	fwd := 100.0
	for i := 0; i <= 4*288; i++ {
		tt := t0.Add(time.Duration(i) * 5 * time.Minute)
		h := tt.In(loc).Hour()
		if h >= 7 && h < 23 || h == 0 {
			fwd += 0.012 // 144 L/h by day and in the hour after midnight
		} else {
			fwd += 0.001 // a little at night
		}
		recv, mt := clock(tt)
		r := reading.Reading{Meter: "m", Quality: reading.QualityGood, Received: recv,
			Has: reading.HasForward | reading.HasReverse, Forward: math.Round(fwd*1e4) / 1e4}
		if !mt.IsZero() {
			r.MeterTime, r.Has = mt, r.Has|reading.HasMeterTime
		}
		var o Output
		f.PushTo(&o, r)
		collect(o)
	}
	collect(f.End())
	for _, d := range f.FlushDays() {
		days[d.Day] += d.Consumption
	}
	return days, steps
}

func sameDays(t *testing.T, got, want map[string]float64) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("no days in the unstepped run")
	}
	for day, w := range want {
		if g := got[day]; math.Abs(g-w) > 0.005*w {
			t.Errorf("day %s: %.4f m3 counted, %.4f unstepped (%.2f%%)", day, g, w, 100*(g-w)/w)
		}
	}
	for day, g := range got {
		if _, ok := want[day]; !ok && g > 0 {
			t.Errorf("day %s: %.4f m3 counted on a day the unstepped run does not have", day, g)
		}
	}
}

var stepAt = time.Date(2026, 3, 3, 12, 2, 30, 0, time.UTC)

// The gateway's clock steps back an hour (a meter without a clock of its
// own): counting goes on and each day's consumption is what an unstepped
// run counts, with one clock_step event of −3600 s.
func TestGatewayClockStepsBackAnHour(t *testing.T) {
	want, _ := clockRun(t, time.UTC, func(tt time.Time) (time.Time, time.Time) { return tt, time.Time{} })
	got, steps := clockRun(t, time.UTC, func(tt time.Time) (time.Time, time.Time) {
		if tt.After(stepAt) {
			return tt.Add(-time.Hour), time.Time{}
		}
		return tt, time.Time{}
	})
	sameDays(t, got, want)
	if len(steps) != 1 || steps[0].Attrs["step_s"] != "-3600" {
		t.Errorf("clock_step events %+v, want one of -3600 s", steps)
	}
}

// A battery swap sets the meter's clock back a year, and a technician sets
// it right two days later: each day is counted as in an unstepped run,
// both steps are events.
func TestMeterClockSetBackAYear(t *testing.T) {
	year := 365 * 24 * time.Hour
	fixAt := stepAt.Add(30 * time.Hour)
	want, _ := clockRun(t, time.UTC, func(tt time.Time) (time.Time, time.Time) { return tt, tt })
	got, steps := clockRun(t, time.UTC, func(tt time.Time) (time.Time, time.Time) {
		if tt.After(stepAt) && !tt.After(fixAt) {
			return tt, tt.Add(-year)
		}
		return tt, tt
	})
	sameDays(t, got, want)
	if len(steps) != 2 {
		t.Errorf("clock_step events %+v, want two (set back, set right)", steps)
	}
}
