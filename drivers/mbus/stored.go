package mbus

import (
	"sort"
	"time"

	pmbus "tidegate/protocol/mbus"
	"tidegate/reading"
)

// storedValues picks a read's historic values: for each storage number
// from 2 up, the volume (instantaneous, tariff 0, subunit 0, m3) and the
// date of the same storage number, as a meter's logger sends them in the
// REQ_UD2 answer and the telegrams after it. A volume without a date is
// left out: nothing would say which day it is. Storage 1 (the due-date
// value) is Result.Due. Dates are placed in loc like the meter's clock
// (MeterTime). Newest first.
func storedValues(meterID string, received time.Time, recs []pmbus.Record, loc *time.Location) []reading.Reading {
	vol := map[uint64]float64{}
	date := map[uint64]time.Time{}
	for _, rec := range recs {
		if rec.Storage < 2 || rec.Tariff != 0 || rec.Subunit != 0 || rec.Function != pmbus.FuncInstantaneous || rec.Value.Invalid {
			continue
		}
		q := rec.Quantity
		switch {
		case rec.Value.Kind == pmbus.ValueNumber && rec.Unit == "m3" && (q == "volume" || q == "volume, forward flow"):
			vol[rec.Storage] = rec.Value.Number
		case (q == "date" || q == "date and time") && !rec.Value.Time.IsZero():
			date[rec.Storage] = MeterTime(rec.Value, loc)
		}
	}
	var out []reading.Reading
	for n, v := range vol {
		t, ok := date[n]
		if !ok {
			continue
		}
		out = append(out, reading.Reading{Meter: meterID, Received: received, MeterTime: t, Forward: v,
			Has: reading.HasForward | reading.HasMeterTime, Quality: reading.QualityGood, Source: reading.SourceMeterMemory})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MeterTime.After(out[j].MeterTime) })
	return out
}
