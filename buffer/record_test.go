package buffer

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"testing"
	"time"

	"tidegate/reading"
)

var t0 = time.Date(2026, 11, 23, 1, 0, 0, 123456789, time.UTC)

func sampleReading(meter string, i int) *reading.Reading {
	return &reading.Reading{
		Meter: meter, Received: t0.Add(time.Duration(i) * time.Minute), MeterTime: t0.Add(time.Duration(i)*time.Minute - time.Second),
		Has:     reading.HasForward | reading.HasReverse | reading.HasFlow | reading.HasTemperature | reading.HasMeterTime | reading.HasBattery,
		Forward: 1234.567 + float64(i)*0.001, Reverse: 0.25, Flow: 0.42, Temperature: 11.5, BatteryMV: 3600,
		Filter: &reading.Filtered{Start: t0.Add(time.Duration(i-1) * time.Minute), Consumption: 0.001, Phantom: 0.0001, Flags: reading.FlagSelfRotation},
	}
}

func recordCases() map[string]reading.Record {
	return map[string]reading.Record{
		"interval reading": {Kind: reading.KindReading, Reading: sampleReading("m-0001", 1)},
		"bare reading":     {Kind: reading.KindReading, Reading: &reading.Reading{}},
		"error reading": {Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m2", Received: t0, Quality: reading.QualityError,
			Error: "timeout after 3 tries", Raw: []byte{0x01, 0x83, 0x02, 0xc0, 0xf1}, Status: reading.StatusLeak | reading.StatusTamper}},
		"odd floats": {Kind: reading.KindBilling, Reading: &reading.Reading{Meter: "m3", Forward: math.Inf(1), Reverse: math.Copysign(0, -1),
			Net: -1e-300, Flow: math.MaxFloat64, Temperature: math.SmallestNonzeroFloat64}},
		"due-date value": {Kind: reading.KindBilling, Reading: &reading.Reading{Meter: "mb-1", Received: t0, Storage: 1,
			MeterTime: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Has: reading.HasForward | reading.HasMeterTime, Forward: 123.456}},
		"empty filter": {Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m4", Filter: &reading.Filtered{}}},
		"far times": {Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m5", Received: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
			MeterTime: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		"summary": {Kind: reading.KindSummary, Summary: &reading.DailySummary{Meter: "m-0001", Day: "2026-11-22", Consumption: 0.512,
			Phantom: 0.003, Backflow: 0.001, MinNightFlow: 0.002, PeakFlow: 1.4, HoursWithUse: 11, Flags: reading.FlagLeak | reading.FlagNoUse}},
		"summary negative hours": {Kind: reading.KindSummary, Summary: &reading.DailySummary{Meter: "x", HoursWithUse: -3}},
		"event": {Kind: reading.KindEvent, Event: &reading.Event{Time: t0, Meter: "m-0001", Type: "leak", Message: "night flow 0.02 m3/h",
			Attrs: map[string]string{"flow": "0.02", "since": "02:00", "": "empty key"}}},
		"bare event": {Kind: reading.KindEvent, Event: &reading.Event{}},
		"unicode":    {Kind: reading.KindEvent, Event: &reading.Event{Type: "meter_offline", Meter: "Zähler-7 ✓"}},
	}
}

// equalRecords compares as values: times by instant (the codec returns UTC).
func equalRecords(a, b reading.Record) bool {
	norm := func(r reading.Record) reading.Record {
		if r.Reading != nil {
			x := *r.Reading
			x.Received, x.MeterTime = x.Received.UTC(), x.MeterTime.UTC()
			if len(x.Raw) == 0 {
				x.Raw = nil
			}
			if x.Filter != nil {
				f := *x.Filter
				f.Start = f.Start.UTC()
				x.Filter = &f
			}
			r.Reading = &x
		}
		if r.Event != nil {
			e := *r.Event
			e.Time = e.Time.UTC()
			if len(e.Attrs) == 0 {
				e.Attrs = nil
			}
			r.Event = &e
		}
		return r
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func TestRecordRoundTrip(t *testing.T) {
	for name, r := range recordCases() {
		t.Run(name, func(t *testing.T) {
			b, err := appendRecord(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatalf("decode %x: %v", b, err)
			}
			if !equalRecords(got, r) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
			}
			// Floats must survive bit for bit (totals are billed).
			if r.Reading != nil && math.Float64bits(got.Reading.Reverse) != math.Float64bits(r.Reading.Reverse) {
				t.Errorf("reverse bits %x, want %x", math.Float64bits(got.Reading.Reverse), math.Float64bits(r.Reading.Reverse))
			}
			if r.Kind != recordKind(b) {
				t.Errorf("recordKind = %v, want %v", recordKind(b), r.Kind)
			}
			if r.Reading != nil && string(readingMeter(b)) != r.Reading.Meter {
				t.Errorf("readingMeter = %q, want %q", readingMeter(b), r.Reading.Meter)
			}
		})
	}
}

func TestRecordSize(t *testing.T) {
	r := reading.Record{Kind: reading.KindReading, Reading: sampleReading("m-0001", 1)}
	b, err := appendRecord(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	// A full interval reading with filter output: the file-size figures in
	// the README depend on this staying near 100 bytes.
	if len(b) > 120 {
		t.Errorf("interval reading encodes to %d bytes, want <= 120", len(b))
	}
}

func TestRecordInvalid(t *testing.T) {
	tests := map[string]reading.Record{
		"no kind":         {Reading: &reading.Reading{}},
		"reading without": {Kind: reading.KindReading},
		"billing without": {Kind: reading.KindBilling, Event: &reading.Event{}},
		"summary without": {Kind: reading.KindSummary},
		"event without":   {Kind: reading.KindEvent},
		"unknown kind":    {Kind: 9, Event: &reading.Event{}},
		"too large raw":   {Kind: reading.KindReading, Reading: &reading.Reading{Raw: make([]byte, MaxRecordBytes)}},
	}
	for name, r := range tests {
		if _, err := appendRecord(nil, &r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: err = %v, want ErrInvalidRecord", name, err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	good, _ := appendRecord(nil, &reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Type: "leak", Attrs: map[string]string{"a": "b"}}})
	tests := map[string][]byte{
		"empty":            {},
		"version only":     {formatV1},
		"future version":   {2, byte(reading.KindReading), 0, 0},
		"unknown kind":     {formatV1, 7, 0},
		"unknown mask bit": {formatV1, byte(reading.KindReading), 0x80, 0x80, 0x01, 0},
		"string too long":  {formatV1, byte(reading.KindReading), 0, 0x7f, 'a'},
		"trailing bytes":   append(append([]byte{}, good...), 0),
		"truncated":        good[:len(good)-1],
		"huge attr count":  {formatV1, byte(reading.KindEvent), byte(emAttrs), 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad nanos":        {formatV1, byte(reading.KindEvent), byte(emTime), 0x02, 0x80, 0x94, 0xeb, 0xdc, 0x03},
	}
	for name, b := range tests {
		if _, err := decodeRecord(b); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: err = %v, want ErrDecode", name, err)
		}
	}
}

// FuzzDecodeRecord: stored bytes come off an SD card that may have been
// cut mid-write. Whatever they are, decoding must not panic or allocate
// beyond their size, and what decodes must re-encode to the same values.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range recordCases() {
		b, err := appendRecord(nil, &r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		b2, err := appendRecord(nil, &r)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v (%+v)", err, r)
		}
		r2, err := decodeRecord(b2)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		// Compared as canonical bytes: a NaN is not DeepEqual to itself.
		b3, err := appendRecord(nil, &r2)
		if err != nil || !bytes.Equal(b2, b3) {
			t.Fatalf("re-encode changed the record: %v\n%x\n%x", err, b2, b3)
		}
	})
}

// A meter time placed in the meter's zone keeps its offset through the
// buffer (meter_time says which offset was used); one in UTC costs no byte.
func TestRecordMeterZone(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	r := reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "mb-2", Received: t0,
		MeterTime: time.Date(2026, 10, 25, 2, 30, 0, 0, cet), Has: reading.HasForward | reading.HasMeterTime, Forward: 1}}
	b, err := appendRecord(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, off := got.Reading.MeterTime.Zone(); off != 3600 || !got.Reading.MeterTime.Equal(r.Reading.MeterTime) {
		t.Fatalf("meter time %v, want %v with its offset", got.Reading.MeterTime, r.Reading.MeterTime)
	}
	u := r
	x := *r.Reading
	x.MeterTime = x.MeterTime.UTC()
	u.Reading = &x
	bu, _ := appendRecord(nil, &u)
	if len(bu) >= len(b) {
		t.Errorf("UTC meter time %d bytes, zoned %d: the zone should cost bytes only where it is not UTC", len(bu), len(b))
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// FuzzDecodeStored: a stored record (version 3, bound to its seq) decodes
// only under its own seq, never panics, and re-encodes to what it decoded.
func FuzzDecodeStored(f *testing.F) {
	for _, r := range recordCases() {
		b, err := appendRecord(nil, &r)
		if err != nil {
			f.Fatal(err)
		}
		seal(b, 42)
		f.Add(b, uint64(42))
	}
	f.Fuzz(func(t *testing.T, b []byte, seq uint64) {
		r, err := decodeStored(seq, b)
		if err != nil {
			return
		}
		if len(b) > 0 && b[0] == formatV3 {
			if _, err := decodeStored(seq+1, b); err == nil {
				t.Fatalf("version-3 record decodes under seq %d and %d", seq, seq+1)
			}
		}
		b2, err := appendRecord(nil, &r)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		seal(b2, seq)
		if _, err := decodeStored(seq, b2); err != nil {
			t.Fatalf("re-sealed record does not decode: %v", err)
		}
	})
}

// A record sealed under one seq is undecodable under any other, and
// reseal moves only an intact one.
func TestSealBindsSeq(t *testing.T) {
	b, _ := appendRecord(nil, &reading.Record{Kind: reading.KindReading, Reading: sampleReading("m", 1)})
	seal(b, 7)
	if _, err := decodeStored(7, b); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeStored(8, b); !errors.Is(err, ErrDecode) {
		t.Fatalf("decoded under another seq: %v", err)
	}
	if _, err := decodeRecord(b); !errors.Is(err, ErrDecode) {
		t.Fatalf("a stored record decoded without its seq: %v", err)
	}
	moved := reseal(b, 7, 9)
	if _, err := decodeStored(9, moved); err != nil {
		t.Fatalf("resealed: %v", err)
	}
	b[5] ^= 1 // rotten
	if _, err := decodeStored(9, reseal(b, 7, 9)); err == nil {
		t.Fatal("reseal laundered a damaged record")
	}
}
