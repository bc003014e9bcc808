package simulator

import (
	"math"
	"testing"
	"time"

	"tidegate/protocol/cjt188"
	"tidegate/simulator/water"
)

// TestCJTDailyFreezes: a meter asked nothing for three days freezes each
// of its midnights anyway, and what D300–D302 give back is the water
// model's own total at those midnights: a second model with the same seed,
// advanced straight to each midnight, shows the same (to the meter's
// 0.01 m3). D303 (before the meter started) is an empty slot.
func TestCJTDailyFreezes(t *testing.T) {
	start := time.Date(2026, 12, 1, 7, 30, 0, 0, time.UTC)
	wc := water.Config{Profile: "flat", Persons: 4, UseScale: 20, Leaks: []water.Flow{{RateLH: 30}}}
	model, err := water.New(wc, 11, start)
	if err != nil {
		t.Fatal(err)
	}
	state := func(now time.Time) water.Snapshot {
		if now.After(model.Now()) {
			model.Advance(now)
		}
		return model.Snapshot()
	}
	addr := cjt188.Address{0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78}
	for _, co := range []cjt188.ClockOrder{cjt188.ClockSecondsFirst, cjt188.ClockCenturyFirst} {
		model, _ = water.New(wc, 11, start)
		m, err := NewCJTMeter(CJTMeterConfig{ID: "m", Address: addr, Clock: co}, state, nil)
		if err != nil {
			t.Fatal(err)
		}
		ask := func(di cjt188.DI, now time.Time) cjt188.Freeze {
			t.Helper()
			b, _ := cjt188.Encode(cjt188.ReadData(cjt188.TypeColdWater, addr, di, cjt188.HighFirst, 1))
			msg, _, err := cjt188.DecodeMessage(m.Respond(b, now))
			if err != nil || msg.DI != di {
				t.Fatalf("%s: %+v %v", di, msg, err)
			}
			f, err := cjt188.DecodeFreeze(msg.Body, co)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		if f := ask(cjt188.DIFreezeTimed, start.Add(time.Hour)); !f.Time.IsZero() {
			t.Fatalf("a freeze before the first midnight: %+v", f)
		}
		now := start.Add(3*24*time.Hour + 5*time.Hour)
		truth, _ := water.New(wc, 11, start)
		want := map[int]float64{}
		for i := 1; i <= 3; i++ {
			mid := time.Date(2026, 12, 1+i, 0, 0, 0, 0, time.UTC)
			truth.Advance(mid)
			s := truth.Snapshot()
			want[i] = math.Floor(math.Max(s.Forward-s.Reverse, 0)*100+1e-6) / 100
		}
		for i := 1; i <= 3; i++ {
			f := ask(cjt188.DIFreezeTimed+cjt188.DI(3-i), now) // D300 is the newest: Dec 4
			v, _ := f.Volume.M3()
			if f.Time != (cjt188.Clock{Year: 2026, Month: 12, Day: 1 + i}) || math.Abs(v-want[i]) > 0.0100001 {
				t.Fatalf("%s: freeze %d: %+v (%.2f m3), want Dec %d at %.2f m3", co, i, f, v, 1+i, want[i])
			}
		}
		if want[3] <= want[1] {
			t.Fatalf("no use over two days: %v", want)
		}
		if f := ask(cjt188.DIFreezeTimed+3, now); !f.Time.IsZero() {
			t.Fatalf("D303: %+v", f)
		}
		if got := m.DailyFreezes(); len(got) != 3 || !got[0].Time.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("DailyFreezes %+v", got)
		}
	}
}
