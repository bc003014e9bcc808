package mbus

import (
	"math"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on a box without a zone database

	"tidegate/filter"
	pmbus "tidegate/protocol/mbus"
	"tidegate/reading"
)

// dstDays runs four days of 5-minute polls of an M-Bus meter whose clock
// keeps Europe/Berlin (type F date-time with the SU bit) through the
// decoder and the filter, and returns each local day's consumption. With
// viaWire false the readings carry the true instants instead: the run
// without any step of the clock.
func dstDays(t *testing.T, from time.Time, viaWire bool) map[string]float64 {
	t.Helper()
	loc := from.Location()
	f := filter.New(filter.Config{Location: loc})
	days := map[string]float64{}
	var faults int
	collect := func(o filter.Output) {
		for _, d := range o.Days {
			days[d.Day] += d.Consumption
		}
		for _, r := range o.Readings {
			if r.Filter.Flags&reading.FlagMeterFault != 0 {
				faults++
			}
		}
	}
	fwd := 100.0
	for tt := from.UTC(); tt.Before(from.Add(96 * time.Hour)); tt = tt.Add(5 * time.Minute) {
		h := tt.In(loc).Hour()
		if h >= 7 && h < 23 || h <= 3 {
			fwd += 0.012 // by day, and in the small hours the clocks change in
		} else {
			fwd += 0.001
		}
		fwd = math.Round(fwd*1e4) / 1e4
		var r reading.Reading
		if viaWire {
			tg := telegram(t, 0,
				rec([]byte{0x04}, []byte{0x13}, pmbus.Number(fwd)),
				rec([]byte{0x04}, []byte{0x93, 0x3C}, pmbus.Number(0)),
				rec([]byte{0x04}, []byte{0x6D}, pmbus.DateTime(tt.In(loc))))
			res, err := DecodeIn("m1", []Telegram{tg}, tt.Add(3*time.Second), false, loc)
			if err != nil {
				t.Fatal(err)
			}
			r = res.Reading
			if !r.MeterTime.Equal(tt) {
				t.Fatalf("meter time %v, want %v", r.MeterTime, tt)
			}
		} else {
			r = reading.Reading{Meter: "m1", Received: tt.Add(3 * time.Second), MeterTime: tt, Quality: reading.QualityGood,
				Has: reading.HasForward | reading.HasReverse | reading.HasMeterTime, Forward: fwd}
		}
		var o filter.Output
		f.PushTo(&o, r)
		collect(o)
	}
	collect(f.End())
	for _, d := range f.FlushDays() {
		days[d.Day] += d.Consumption
	}
	if faults > 0 {
		t.Errorf("%d intervals flagged meter_fault", faults)
	}
	return days
}

func testDST(t *testing.T, from time.Time) {
	want, got := dstDays(t, from, false), dstDays(t, from, true)
	if len(want) < 4 {
		t.Fatalf("unstepped run has %d days", len(want))
	}
	for day, w := range want {
		if g := got[day]; math.Abs(g-w) > 0.005*w {
			t.Errorf("day %s: %.4f m3 counted, %.4f unstepped", day, g, w)
		}
	}
}

// Summer time ends (Europe/Berlin, 2026-10-25 03:00 CEST → 02:00 CET): the
// meter's clock repeats an hour, the SU bit tells the two apart, and each
// local day counts what a run on the true instants counts.
func TestSummerTimeEndsOnAnMBusMeter(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	testDST(t, time.Date(2026, 10, 23, 12, 0, 0, 0, loc))
}

// Summer time starts (2026-03-29 02:00 CET → 03:00 CEST): the meter's clock
// skips an hour; the days are still the zone's.
func TestSummerTimeStartsOnAnMBusMeter(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	testDST(t, time.Date(2026, 3, 27, 12, 0, 0, 0, loc))
}

// The SU bit says which offset the wall clock shows: 02:30 on the night
// summer time ends is two instants an hour apart; a meter that keeps
// standard time all year (SU never set) is placed at the standard offset in
// July too; a zone without summer time ignores the bit.
func TestMeterTimeZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	wall := func(y int, m time.Month, d, h, mi int, su bool) pmbus.Value {
		return pmbus.Value{Kind: pmbus.ValueDateTime, Time: time.Date(y, m, d, h, mi, 0, 0, time.UTC), SummerTime: su}
	}
	for _, tc := range []struct {
		name string
		v    pmbus.Value
		loc  *time.Location
		want time.Time
	}{
		{"repeated hour, summer", wall(2026, 10, 25, 2, 30, true), berlin, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
		{"repeated hour, winter", wall(2026, 10, 25, 2, 30, false), berlin, time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)},
		{"standard time in July", wall(2026, 7, 1, 12, 0, false), berlin, time.Date(2026, 7, 1, 11, 0, 0, 0, time.UTC)},
		{"summer time in July", wall(2026, 7, 1, 12, 0, true), berlin, time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)},
		{"no summer time in the zone", wall(2026, 7, 1, 12, 0, true), shanghai, time.Date(2026, 7, 1, 4, 0, 0, 0, time.UTC)},
	} {
		got := MeterTime(tc.v, tc.loc)
		if !got.Equal(tc.want) || got.Location() != tc.loc {
			t.Errorf("%s: %v, want %v in %v", tc.name, got, tc.want, tc.loc)
		}
	}
}
