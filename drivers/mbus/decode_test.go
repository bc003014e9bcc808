package mbus

import (
	"errors"
	"testing"
	"time"

	pmbus "tidegate/protocol/mbus"
	"tidegate/reading"
)

func rec(dib, vib []byte, v pmbus.Value) pmbus.Record {
	return pmbus.Record{DIB: dib, VIB: vib, Value: v}
}

// telegram encodes records as a meter would send them and frames them back.
func telegram(t *testing.T, status byte, rs ...pmbus.Record) Telegram {
	t.Helper()
	h := pmbus.Header{Long: true, ID: "12345678", Manufacturer: "KAM", Version: 0x1B, Medium: 0x07, Status: status}
	raw, err := pmbus.EncodeRspUd(5, false, h, rs)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := pmbus.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return Telegram{Address: f.Address, C: f.C, CI: f.CI, Data: f.Data, Raw: raw}
}

func TestDecode(t *testing.T) {
	at := time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC)
	dueDay := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)
	volume := rec([]byte{0x04}, []byte{0x13}, pmbus.Number(123.456))
	backward := rec([]byte{0x04}, []byte{0x93, 0x3C}, pmbus.Number(0.789))
	flow := rec([]byte{0x02}, []byte{0x3B}, pmbus.Number(0.512))
	temp := rec([]byte{0x02}, []byte{0x59}, pmbus.Number(11.5))
	clock := rec([]byte{0x04}, []byte{0x6D}, pmbus.Value{Kind: pmbus.ValueDateTime, Time: at})
	tariff1 := rec([]byte{0x84, 0x10}, []byte{0x13}, pmbus.Number(999)) // tariff 1: not the total
	dueVol := rec([]byte{0x44}, []byte{0x13}, pmbus.Number(120.0))
	dueDate := rec([]byte{0x42}, []byte{0x6C}, pmbus.Value{Kind: pmbus.ValueDate, Time: dueDay})
	errFlags := rec([]byte{0x01}, []byte{0xFD, 0x17}, pmbus.Number(4))
	for _, tc := range []struct {
		name    string
		status  byte
		recs    [][]pmbus.Record
		want    reading.Reading
		wantDue *reading.Reading
		err     error
	}{
		{name: "full, odd order", recs: [][]pmbus.Record{{tariff1, temp, clock, backward, flow, dueVol, volume, dueDate}},
			want: reading.Reading{Forward: 123.456, Reverse: 0.789, Flow: 0.512, Temperature: 11.5, MeterTime: at,
				Has: reading.HasForward | reading.HasReverse | reading.HasFlow | reading.HasTemperature | reading.HasMeterTime},
			wantDue: &reading.Reading{Forward: 120, MeterTime: dueDay, Has: reading.HasForward | reading.HasMeterTime}},
		{name: "two telegrams", recs: [][]pmbus.Record{{flow}, {volume}},
			want: reading.Reading{Forward: 123.456, Flow: 0.512, Has: reading.HasForward | reading.HasFlow}},
		{name: "status and error flags", status: 0x04, recs: [][]pmbus.Record{{volume, errFlags}},
			want: reading.Reading{Forward: 123.456, Has: reading.HasForward, Status: reading.StatusLowBattery | reading.StatusMeterError}},
		{name: "maker's info word", recs: [][]pmbus.Record{{volume, rec([]byte{0x04}, []byte{0xFF, 0x23}, pmbus.Number(0x24)), rec([]byte{0x02}, []byte{0xFD, 0x46}, pmbus.Number(3.6))}},
			want: reading.Reading{Forward: 123.456, BatteryMV: 3600, Has: reading.HasForward | reading.HasBattery, Status: reading.StatusLeak | reading.StatusLowBattery}},
		{name: "no volume", recs: [][]pmbus.Record{{flow, tariff1}}, err: ErrNoVolume,
			want: reading.Reading{Flow: 0.512, Has: reading.HasFlow, Quality: reading.QualityError, Error: ErrNoVolume.Error()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ts []Telegram
			for _, rs := range tc.recs {
				ts = append(ts, telegram(t, tc.status, rs...))
			}
			res, err := DecodeIn("m1", ts, at, false, time.UTC)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			tc.want.Meter, tc.want.Received = "m1", at
			got := res.Reading
			if got.Forward-tc.want.Forward > 1e-9 || tc.want.Forward-got.Forward > 1e-9 {
				t.Fatalf("forward %v, want %v", got.Forward, tc.want.Forward)
			}
			got.Forward = tc.want.Forward
			if got.Meter != tc.want.Meter || got.Has != tc.want.Has || got.Reverse != tc.want.Reverse || got.Flow != tc.want.Flow ||
				got.Temperature != tc.want.Temperature || !got.MeterTime.Equal(tc.want.MeterTime) || got.Status != tc.want.Status ||
				got.Quality != tc.want.Quality || got.BatteryMV != tc.want.BatteryMV || got.Error != tc.want.Error {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if (res.Due == nil) != (tc.wantDue == nil) {
				t.Fatalf("due %+v, want %+v", res.Due, tc.wantDue)
			}
			if d := res.Due; d != nil && (d.Forward != tc.wantDue.Forward || !d.MeterTime.Equal(tc.wantDue.MeterTime) || d.Has != tc.wantDue.Has) {
				t.Fatalf("due %+v, want %+v", d, tc.wantDue)
			}
			if want := (Secondary{ID: 12345678, Manufacturer: 0x2C2D, Version: 0x1B, Medium: 7}); res.Secondary != want {
				t.Fatalf("secondary %v, want %v", res.Secondary, want)
			}
		})
	}
}
