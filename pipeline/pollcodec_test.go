package pipeline

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"tidegate/buffer"
	"tidegate/reading"
)

// The codec's decoded polls are what buffer.Decode(buffer.Encode(poll))
// gives (what the journal replayed before), across entries and a reset,
// whatever changes between two polls, including what it writes in full.
func TestPollCodecRoundTrip(t *testing.T) {
	// Every field of a reading is either delta-coded, forced to its zero
	// (Raw, Error, Storage, Source, Filter: such a poll goes in full) or the
	// meter: a field added to reading.Reading must be added to the codec.
	if n := reflect.TypeOf(reading.Reading{}).NumField(); n != 17 {
		t.Fatalf("reading.Reading has %d fields; pollcodec.go knows 17", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.Local)
	meters := []string{"a", "b", "c"}
	last := map[string]reading.Reading{}
	next := func(i int) reading.Reading {
		m := meters[rng.IntN(len(meters))]
		r, ok := last[m]
		if !ok {
			r = reading.Reading{Meter: m, Received: t0, Has: reading.HasForward | reading.HasReverse, Forward: 100, Reverse: 1, Quality: reading.QualityGood}
		}
		r.Received = r.Received.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
		r.Forward += float64(rng.IntN(1000)) / 1000
		r.Error, r.Storage, r.Filter = "", 0, nil
		switch rng.IntN(14) {
		case 0:
			r.Flow = -r.Flow - 0.5
		case 1:
			r.MeterTime = r.Received.Add(-time.Duration(rng.Int64N(int64(time.Hour))))
		case 2:
			r.MeterTime = time.Time{}
		case 3:
			r.Temperature = rng.Float64() * 30
		case 4:
			r.BatteryMV = uint16(rng.IntN(4000))
		case 5:
			r.Status ^= reading.Status(1 << rng.IntN(8))
		case 6:
			r.Error = "odd" // written in full
		case 7:
			r.Received = r.Received.Add(200 * 365 * 24 * time.Hour) // past a delta: in full
		case 8:
			r.Net = math.NaN()
		case 9:
			r.Has ^= reading.HasFlow
		case 10:
			r.Reverse -= 0.25 // a total going back
		case 11:
			r.Received = r.Received.Add(-5 * time.Second) // a clock stepped back
		case 12:
			r.Storage = 1
		}
		last[m] = r
		return r
	}
	var enc, dec pollCoder
	var want []reading.Reading
	var entries [][]byte
	var q []byte
	full := 0
	for i := 0; i < 3000; i++ {
		r := next(i)
		before := len(enc.last)
		var err error
		if q, err = enc.append(q, &r); err != nil {
			t.Fatal(err)
		}
		if len(enc.last) > before || r.Error != "" {
			full++
		}
		v, err := buffer.Encode(&reading.Record{Kind: reading.KindReading, Reading: &r})
		if err != nil {
			t.Fatal(err)
		}
		w, err := buffer.Decode(v)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, *w.Reading)
		if rng.IntN(5) == 0 {
			entries, q = append(entries, entry(q)), nil
		}
		if i == 1500 {
			// A checkpoint: the journal starts afresh on both sides.
			entries, q = append(entries, entry(q)), nil
			var got []reading.Reading
			for _, e := range entries {
				if err := dec.decode(e, func(r reading.Reading) { got = append(got, r) }); err != nil {
					t.Fatal(err)
				}
			}
			compare(t, got, want)
			enc.reset()
			dec = pollCoder{}
			entries, want = nil, nil
		}
	}
	entries = append(entries, entry(q))
	var got []reading.Reading
	for _, e := range entries {
		if err := dec.decode(e, func(r reading.Reading) { got = append(got, r) }); err != nil {
			t.Fatal(err)
		}
	}
	compare(t, got, want)
	if full == 0 {
		t.Fatal("no poll went in full")
	}
}

func compare(t *testing.T, got, want []reading.Reading) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d polls decoded, %d encoded", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) && !(math.IsNaN(got[i].Net) && math.IsNaN(want[i].Net)) {
			t.Fatalf("poll %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// A steady fleet's polls cost a fraction of a full record each, and a
// damaged entry is refused, not replayed as other values.
func TestPollCodecSize(t *testing.T) {
	var c pollCoder
	var q []byte
	full := 0
	for i := 0; i < 700; i++ {
		r := reading.Reading{Meter: "meter-" + string(rune('0'+i%7)), Received: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 214286 * time.Microsecond),
			Has: reading.HasForward | reading.HasReverse | reading.HasFlow, Forward: 100 + 0.0001*float64(i/7), Reverse: 1, Flow: 0.01, Quality: reading.QualityGood}
		v, _ := buffer.Encode(&reading.Record{Kind: reading.KindReading, Reading: &r})
		full += len(v) + 1
		var err error
		if q, err = c.append(q, &r); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%.1f bytes a poll, %.1f as full records", float64(len(q))/700, float64(full)/700)
	if len(q)*3 > full {
		t.Fatalf("%d bytes for 700 polls, full records %d: want a third at most", len(q), full)
	}
	e := entry(q)
	e[len(e)/2] ^= 0x10
	var d pollCoder
	if err := d.decode(e, func(reading.Reading) {}); err == nil {
		t.Fatal("a damaged entry decoded")
	}
}

func FuzzPollDecode(f *testing.F) {
	var c pollCoder
	var q []byte
	for i := 0; i < 20; i++ {
		r := reading.Reading{Meter: "m" + string(rune('a'+i%3)), Received: time.Unix(1800000000+int64(i), 0), Has: reading.HasForward, Forward: float64(i)}
		q, _ = c.append(q, &r)
	}
	f.Add(entry(q))
	f.Add(entry(nil))
	f.Add([]byte{0x05, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, e []byte) {
		var d pollCoder
		_ = d.decode(e, func(reading.Reading) {})
		// Without its checksum a frame is still decoded defensively.
		if len(e) >= 6 && e[0] == pollsMarker {
			_ = d.decodePolls(e[6:], func(reading.Reading) {})
		}
	})
}
