package filter

import (
	"time"

	"tidegate/reading"
)

// dayState accumulates one meter's local day for its summary. Day and hour
// boundaries are cached as instants so most readings need no calendar work.
type dayState struct {
	start, end int64 // local midnight to next, unix ns
	cons, ph   float64
	back       float64
	night      [2]float64 // consumption in hours 02 and 03
	nightSeen  [2]bool
	peak       float64
	hours      uint32 // bit h: consumption during local hour h
	flags      reading.FilterFlags
	any        bool
}

func (d *dayState) reset(t int64, loc *time.Location) {
	y, mo, dd := time.Unix(0, t).In(loc).Date()
	s := time.Date(y, mo, dd, 0, 0, 0, 0, loc)
	*d = dayState{start: s.UnixNano(), end: s.AddDate(0, 0, 1).UnixNano()}
}

// roll closes the day if t lies beyond it.
func (d *dayState) roll(t int64, m *meter, c *Config, out *Output) {
	if t <= d.end {
		return
	}
	if d.any {
		out.Days = append(out.Days, d.summary(m.id, c.Location))
	}
	d.reset(t, c.Location)
}

func (d *dayState) add(it *item, f *reading.Filtered) {
	d.any = true
	d.cons += f.Consumption
	d.ph += f.Phantom
	d.back += f.Reverse
	d.flags |= f.Flags
	h := int((it.t - 1 - d.start) / int64(time.Hour))
	if h < 0 || h > 23 {
		h = max(0, min(h, 23))
	}
	if f.Consumption > 0 {
		d.hours |= 1 << h
	}
	if h == 2 || h == 3 {
		d.night[h-2] += f.Consumption
		d.nightSeen[h-2] = true
	}
	if dt := float64(it.t-it.start) / 3600e9; dt > 0 {
		d.peak = max(d.peak, f.Consumption/max(dt, 1.0/60))
	}
}

func (d *dayState) summary(id string, loc *time.Location) reading.DailySummary {
	s := reading.DailySummary{
		Meter: id, Day: time.Unix(0, d.start).In(loc).Format("2006-01-02"),
		Consumption: d.cons, Phantom: d.ph, Backflow: d.back, PeakFlow: d.peak, Flags: d.flags,
	}
	switch {
	case d.nightSeen[0] && d.nightSeen[1]:
		s.MinNightFlow = min(d.night[0], d.night[1])
	case d.nightSeen[0]:
		s.MinNightFlow = d.night[0]
	case d.nightSeen[1]:
		s.MinNightFlow = d.night[1]
	}
	for h := d.hours; h != 0; h &= h - 1 {
		s.HoursWithUse++
	}
	return s
}
