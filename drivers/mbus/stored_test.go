package mbus

import (
	"testing"
	"time"

	pmbus "tidegate/protocol/mbus"
)

func loggerRecords(t testing.TB) []byte {
	t.Helper()
	var b []byte
	var err error
	for _, r := range []pmbus.Record{
		{DIB: []byte{0x04}, VIB: []byte{0x13}, Value: pmbus.Number(12.345)},                                           // current: not stored
		{DIB: []byte{0x44}, VIB: []byte{0x13}, Value: pmbus.Number(11.0)},                                             // storage 1: the due date
		{DIB: []byte{0x84, 0x01}, VIB: []byte{0x13}, Value: pmbus.Number(12.0)},                                       // storage 2
		{DIB: []byte{0x82, 0x01}, VIB: []byte{0x6C}, Value: pmbus.Date(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))}, // its date
		{DIB: []byte{0xC4, 0x01}, VIB: []byte{0x13}, Value: pmbus.Number(11.5)},                                       // storage 3
		{DIB: []byte{0xC2, 0x01}, VIB: []byte{0x6C}, Value: pmbus.Date(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))}, // its date
		{DIB: []byte{0x84, 0x02}, VIB: []byte{0x13}, Value: pmbus.Number(10.0)},                                       // storage 4, no date
		{DIB: []byte{0x92, 0x01}, VIB: []byte{0x3B}, Value: pmbus.Number(0.5)},                                        // storage 2 flow: not a volume
	} {
		if b, err = pmbus.AppendRecord(b, r); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// Historic values are the storage-2-up volumes that have a date of the
// same storage number, newest first.
func TestStoredValues(t *testing.T) {
	recs, err := pmbus.ParseRecords(loggerRecords(t))
	if err != nil {
		t.Fatal(err)
	}
	got := storedValues("m", time.Now(), recs, time.UTC)
	if len(got) != 2 || got[0].Forward != 12.0 || got[0].MeterTime.Day() != 6 || got[1].Forward != 11.5 || got[1].MeterTime.Day() != 5 || got[0].Source != "meter_memory" {
		t.Fatalf("%+v", got)
	}
}

// FuzzStoredValues: whatever records a meter sends, the historic values
// picked from them are dated volumes, newest first, and nothing panics.
// Seeds in testdata/fuzz/FuzzStoredValues.
func FuzzStoredValues(f *testing.F) {
	f.Add(loggerRecords(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, _ := pmbus.ParseRecords(b)
		got := storedValues("m", time.Now(), recs, time.UTC)
		for i, r := range got {
			if r.MeterTime.IsZero() || r.Source != "meter_memory" || (i > 0 && r.MeterTime.After(got[i-1].MeterTime)) {
				t.Fatalf("%d: %+v", i, got)
			}
		}
	})
}
