package mbus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	pmbus "tidegate/protocol/mbus"
	"tidegate/reading"
)

// ErrNoVolume: the answer decoded but carried no current volume record, so
// it cannot serve as a reading.
var ErrNoVolume = errors.New("mbus: no volume record")

// Result is one meter read turned into canonical form.
type Result struct {
	Reading reading.Reading
	// Due is the storage-1 (due-date) volume with its date, for meters that
	// keep one: the billing value the meter itself froze.
	Due       *reading.Reading
	Secondary Secondary // from the header; zero without a long header
	Header    pmbus.Header
}

// Decode maps a read's telegrams onto the canonical reading. Records are
// chosen by quantity, storage, tariff and function, never by position, so
// meters that order their records differently map alike: the current
// (storage 0, tariff 0, subunit 0, instantaneous) volume is the forward
// total, its "backward flow" variant the reverse total, and so on.
//
// The meter's date-times are placed in the gateway's local zone: DecodeIn
// names the zone.
func Decode(meterID string, ts []Telegram, received time.Time, withRaw bool) (Result, error) {
	return DecodeIn(meterID, ts, received, withRaw, nil)
}

// DecodeIn is Decode for a meter whose clock keeps loc (nil: time.Local).
func DecodeIn(meterID string, ts []Telegram, received time.Time, withRaw bool, loc *time.Location) (Result, error) {
	res := Result{Reading: reading.Reading{Meter: meterID, Received: received}}
	r := &res.Reading
	var due reading.Reading
	var haveDue, haveDueDate bool
	var status reading.Status
	for i, tg := range ts {
		app, err := pmbus.ParseApplication(tg.CI, tg.Data)
		if err != nil && len(app.Records) == 0 {
			return res, fmt.Errorf("telegram %d: %w", i+1, err)
		}
		if i == 0 {
			res.Header = app.Header
			res.Secondary, _ = headerSecondary(tg.CI, tg.Data)
			status |= headerStatus(app.Header.Status)
		}
		if withRaw {
			r.Raw = append(r.Raw, tg.Raw...)
		}
		for _, rec := range app.Records {
			if rec.Quantity == "voltage" && rec.Unit == "V" && rec.Storage == 0 && rec.Value.Number > 0 && rec.Value.Number < 65 {
				r.BatteryMV, r.Has = uint16(rec.Value.Number*1000+0.5), r.Has|reading.HasBattery
				continue
			}
			if rec.Tariff != 0 || rec.Subunit != 0 || rec.Function != pmbus.FuncInstantaneous {
				continue
			}
			if st, ok := recordStatus(res.Header.Manufacturer, rec); ok {
				status |= st
				continue
			}
			q := rec.Quantity
			num := rec.Value.Kind == pmbus.ValueNumber && !rec.Value.Invalid
			switch {
			case rec.Storage == 0 && num && rec.Unit == "m3" && (q == "volume" || q == "volume, forward flow"):
				r.Forward, r.Has = rec.Value.Number, r.Has|reading.HasForward
			case rec.Storage == 0 && num && rec.Unit == "m3" && q == "volume, backward flow":
				r.Reverse, r.Has = rec.Value.Number, r.Has|reading.HasReverse
			case rec.Storage == 0 && num && rec.Unit == "m3/h" && strings.HasPrefix(q, "volume flow"):
				if r.Has&reading.HasFlow != 0 && q != "volume flow" {
					continue // keep the plain flow over a directional one
				}
				f := rec.Value.Number
				if strings.HasSuffix(q, "backward flow") {
					f = -f
				}
				r.Flow, r.Has = f, r.Has|reading.HasFlow
			case rec.Storage == 0 && num && rec.Unit == "degC" && (q == "flow temperature" || q == "external temperature"):
				if r.Has&reading.HasTemperature == 0 || q == "flow temperature" {
					r.Temperature, r.Has = rec.Value.Number, r.Has|reading.HasTemperature
				}
			case rec.Storage == 0 && q == "date and time" && !rec.Value.Invalid && !rec.Value.Time.IsZero():
				r.MeterTime, r.Has = MeterTime(rec.Value, loc), r.Has|reading.HasMeterTime
			case rec.Storage == 1 && num && rec.Unit == "m3" && (q == "volume" || q == "volume, forward flow"):
				due.Forward, due.Has, haveDue = rec.Value.Number, due.Has|reading.HasForward, true
			case rec.Storage == 1 && (q == "date" || q == "date and time") && !rec.Value.Invalid && !rec.Value.Time.IsZero():
				due.MeterTime, haveDueDate = MeterTime(rec.Value, loc), true
			}
		}
	}
	r.Status = status
	if r.Has&reading.HasForward == 0 {
		r.Quality, r.Error = reading.QualityError, ErrNoVolume.Error()
		return res, ErrNoVolume
	}
	if r.Has&reading.HasFlow != 0 && r.Flow < 0 {
		r.Status |= reading.StatusReverseFlow
	}
	r.Quality = reading.QualityGood
	if haveDue {
		due.Meter, due.Received, due.Status, due.Quality, due.Storage = meterID, received, status, reading.QualityGood, 1
		if haveDueDate {
			due.Has |= reading.HasMeterTime
		}
		res.Due = &due
	}
	return res, nil
}

// MeterTime places a decoded date or date-time, the meter's wall clock, in
// the zone loc its clock keeps (nil: the gateway's local zone). A type F or I
// date-time's SU bit says which of the zone's offsets the wall clock shows:
// summer time with it, standard time without (so the hour that repeats when
// summer time ends is two different instants, and a meter that keeps
// standard time all year is placed right). A zone without summer time
// ignores the bit.
func MeterTime(v pmbus.Value, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.Local
	}
	w := v.Time
	y, mo, d := w.Date()
	h, mi, s := w.Clock()
	t := time.Date(y, mo, d, h, mi, s, 0, loc)
	if v.Kind != pmbus.ValueDateTime {
		return t
	}
	if off, ok := zoneOffset(loc, y, v.SummerTime); ok {
		return w.Add(-time.Duration(off) * time.Second).In(loc)
	}
	return t
}

// zoneOffset is loc's offset east of UTC, s, in summer (dst) or standard
// time in the given year, if it has one: taken in January and July, so
// either hemisphere's summer is found.
func zoneOffset(loc *time.Location, year int, dst bool) (int, bool) {
	for _, m := range [2]time.Month{time.January, time.July} {
		if c := time.Date(year, m, 1, 12, 0, 0, 0, loc); c.IsDST() == dst {
			_, off := c.Zone()
			return off, true
		}
	}
	return 0, false
}

// headerStatus maps the header's status byte (EN 13757-3 table 7) onto the
// canonical bits: power low, permanent error and application errors.
func headerStatus(b byte) reading.Status {
	var s reading.Status
	if b&0x04 != 0 {
		s |= reading.StatusLowBattery
	}
	if b&0x08 != 0 || b&0x03 == 0x03 || b&0x03 == 0x02 {
		s |= reading.StatusMeterError
	}
	return s
}
