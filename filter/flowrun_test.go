package filter

import (
	"math"
	"strconv"
	"testing"
	"time"

	"tidegate/reading"
)

// A backflow of 1.6 L (16 L/h for 6 min) on a 10 L totaliser never moves
// the reverse total; polled every 10 s, the meter reads it as steady
// backwards flow with the forward total standing still, and that is a
// backflow with its volume. The same readings while the forward total
// moves, or a backwards flow that swings poll to poll, are a surge's.
func TestFlowRunMeasuresBackflow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flow    func(i int) float64 // m3/h read at poll i of the run
		fwdStep int                 // polls between forward steps of 10 L in the run; 0: none
		fwdAt   int                 // a forward step of 10 L at this poll of the run (negative: before it); 0: none
		want    bool
	}{
		{"steady backwards flow, totals still", func(int) float64 { return -0.016 }, 0, 0, true},
		{"the flow read wobbles a little", func(i int) float64 { return -0.016 * (1 + 0.08*math.Sin(float64(i))) }, 0, 0, true},
		{"forward moves: a surge aliased by the polls", func(int) float64 { return -0.016 }, 12, 0, false},
		{"forward moved just before", func(int) float64 { return -0.016 }, 0, -3, false},
		{"forward moves just after", func(int) float64 { return -0.016 }, 0, 40, false},
		{"the flow swings: a surge", func(i int) float64 { return -0.016 * float64(1+i%2*2) }, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(Config{})
			t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			fwd, rev := 100.0, 5.0
			var o Output
			for i := 0; i <= 6*60*2; i++ { // two hours of 10-s polls
				r := reading.Reading{Meter: "m", Received: t0.Add(time.Duration(i) * 10 * time.Second), Quality: reading.QualityGood,
					Has: reading.HasForward | reading.HasReverse | reading.HasFlow, Forward: fwd, Reverse: rev}
				if k := i - 180; tc.fwdAt != 0 && k == tc.fwdAt {
					fwd += 0.01
					r.Forward = fwd
				}
				if k := i - 180; k >= 0 && k < 36 { // from 30 min, for 6 min
					r.Flow = tc.flow(k)
					if tc.fwdStep > 0 && k%tc.fwdStep == tc.fwdStep-1 {
						fwd += 0.01
						r.Forward = fwd
					}
				}
				f.PushTo(&o, r)
			}
			e := f.End()
			o.Readings = append(o.Readings, e.Readings...)
			o.Events = append(o.Events, e.Events...)
			flagged := false
			for _, r := range o.Readings {
				flagged = flagged || r.Filter.Flags&reading.FlagBackflow != 0
			}
			events := backflowEvents(o.Events)
			if !tc.want {
				if flagged || len(events) > 0 {
					t.Fatalf("flagged %v, events %+v: want no backflow", flagged, events)
				}
				return
			}
			if !flagged || len(events) != 1 {
				t.Fatalf("flagged %v, events %+v: want one backflow", flagged, events)
			}
			v, _ := strconv.ParseFloat(events[0].Attrs["volume_l"], 64)
			if math.Abs(v-1.6) > 0.3 || events[0].Attrs["evidence"] != "flow" {
				t.Errorf("event %v, want about 1.6 L measured by the flow", events[0].Attrs)
			}
		})
	}
}

// A backflow that turns a steady leak's flow backwards (49 L/h of leak,
// 62 L/h back: the meter reads -13 L/h) on a 10 L totaliser, just after
// the leak's forward step: a step polled between readings of the leak's
// steady flow is the leak's, not a surge's forward half, and does not deny
// the run.
func TestFlowRunBesideALeak(t *testing.T) {
	f := New(Config{})
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	const leak = 0.049
	acc := 0.0
	var o Output
	for i := 0; i <= 6*60*12; i++ { // twelve hours of 10-s polls: the learner measures the leak's rate over 8
		at := time.Duration(i) * 10 * time.Second
		flow := leak
		back := at >= 10*time.Hour && at < 10*time.Hour+6*time.Minute
		if back {
			flow = -0.013
		} else if i > 0 {
			acc += leak / 360
		}
		if at == 10*time.Hour-time.Minute {
			acc = math.Ceil(acc*100) / 100 // the leak's step falls a minute before
		}
		f.PushTo(&o, reading.Reading{Meter: "m", Received: t0.Add(at), Quality: reading.QualityGood,
			Has: reading.HasForward | reading.HasReverse | reading.HasFlow, Forward: 100 + math.Floor(acc*100+1e-9)/100, Reverse: 5, Flow: flow})
	}
	e := f.End()
	o.Events = append(o.Events, e.Events...)
	events := backflowEvents(o.Events)
	if len(events) != 1 || events[0].Attrs["evidence"] != "flow" {
		t.Fatalf("backflow events %+v, want one measured by the flow", events)
	}
	if v, _ := strconv.ParseFloat(events[0].Attrs["volume_l"], 64); math.Abs(v-1.3) > 0.3 {
		t.Errorf("volume %v L, want about 1.3", v)
	}
}
