package filter

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"tidegate/reading"
	"tidegate/simulator/samples"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func rd(meter string, at time.Duration, f, r float64) reading.Reading {
	return reading.Reading{Meter: meter, Received: t0.Add(at), Has: reading.HasForward | reading.HasReverse, Forward: f, Reverse: r}
}

func TestStep(t *testing.T) {
	tests := []struct {
		prev, now, want float64
		ok              bool
	}{
		{1, 1.5, 0.5, true},
		{1, 1, 0, true},
		{99999.99, 0.02, 0.03, true}, // rollover of a 5-digit totaliser
		{9.995, 0.001, 0.006, true},
		{5, 1, 0, false}, // replaced meter
		{1234.5, 1000, 0, false},
	}
	for _, tt := range tests {
		got, ok := step(tt.prev, tt.now)
		if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("step(%v, %v) = %v, %v; want %v, %v", tt.prev, tt.now, got, ok, tt.want, tt.ok)
		}
	}
}

// run pushes readings and returns every output, flushed.
func run(f *Filter, rs []reading.Reading) Output {
	var o Output
	for _, r := range rs {
		f.PushTo(&o, r)
	}
	fl := f.Flush()
	o.Readings = append(o.Readings, fl.Readings...)
	o.Days = append(o.Days, f.FlushDays()...)
	return o
}

func TestIntervals(t *testing.T) {
	tests := []struct {
		name      string
		in        []reading.Reading
		cons, rev float64
		flags     reading.FilterFlags
	}{
		{"use", []reading.Reading{rd("a", 0, 1, 0), rd("a", time.Minute, 1.01, 0)}, 0.01, 0, 0},
		{"surge, no use", []reading.Reading{rd("a", 0, 1, 0), rd("a", time.Minute, 1.008, 0.006)}, 0, 0, reading.FlagSelfRotation},
		{"surge halves in separate polls", []reading.Reading{rd("a", 0, 1, 0), rd("a", 10*time.Second, 1.008, 0), rd("a", 20*time.Second, 1.008, 0.006)}, 0, 0, reading.FlagSelfRotation},
		{"backflow", []reading.Reading{rd("a", 0, 1, 0), rd("a", 5*time.Minute, 1, 0.002), rd("a", 10*time.Minute, 1, 0.004),
			rd("a", 15*time.Minute, 1, 0.006), rd("a", 20*time.Minute, 1, 0.008), rd("a", 25*time.Minute, 1, 0.01)}, 0, 0.01, reading.FlagBackflow},
		// A coarse totaliser's reverse step waits up to an hour for the
		// forward step of the same surges; none comes: it is backflow.
		{"coarse backflow", []reading.Reading{rd("a", 0, 1, 0), rd("a", 5*time.Minute, 1, 0.01), rd("a", 10*time.Minute, 1, 0.02),
			rd("a", 15*time.Minute, 1, 0.03), rd("a", 20*time.Minute, 1, 0.04), rd("a", 25*time.Minute, 1, 0.05),
			rd("a", 90*time.Minute, 1, 0.05), rd("a", 95*time.Minute, 1, 0.05)}, 0, 0.05, reading.FlagBackflow},
		{"reset", []reading.Reading{rd("a", 0, 10, 0), rd("a", time.Minute, 0.5, 0), rd("a", 2*time.Minute, 0.51, 0)}, 0.01, 0, reading.FlagMeterFault},
		{"not a number", []reading.Reading{rd("a", 0, 1, 0), rd("a", time.Minute, math.NaN(), 0), rd("a", 2*time.Minute, 1.01, 0)}, 0.01, 0, 0},
		{"beyond the pipe", []reading.Reading{rd("a", 0, 1, 0), rd("a", time.Minute, 2, 0)}, 0, 0, reading.FlagMeterFault},
	}
	for _, tt := range tests {
		o := run(New(Config{}), tt.in)
		if len(o.Readings) != len(tt.in)-1 {
			t.Fatalf("%s: %d outputs for %d readings", tt.name, len(o.Readings), len(tt.in))
		}
		var cons, rev float64
		var flags reading.FilterFlags
		for _, r := range o.Readings {
			cons += r.Filter.Consumption
			rev += r.Filter.Reverse
			flags |= r.Filter.Flags
		}
		if math.Abs(cons-tt.cons) > 1e-9 || math.Abs(rev-tt.rev) > 1e-9 || flags != tt.flags {
			t.Errorf("%s: consumption %.4f reverse %.4f flags %v; want %.4f %.4f %v", tt.name, cons, rev, flags.Names(), tt.cons, tt.rev, tt.flags.Names())
		}
	}
}

func TestNoUseAndDays(t *testing.T) {
	var rs []reading.Reading
	for m := 0; m <= 3*24*60; m += 15 {
		f := 1.0
		if m < 60 {
			f += float64(m) * 0.001 // used in the first hour, never again
		} else {
			f += 0.06
		}
		rs = append(rs, rd("v", time.Duration(m)*time.Minute, f, 0))
	}
	o := run(New(Config{NoUse: 48 * time.Hour}), rs)
	var noUse int
	for _, r := range o.Readings {
		if r.Filter.Flags&reading.FlagNoUse != 0 {
			noUse++
			if r.Received.Before(t0.Add(49 * time.Hour)) {
				t.Fatalf("no_use at %v, before 48 h without use", r.Received)
			}
		}
	}
	if noUse == 0 {
		t.Error("no_use never raised")
	}
	if len(o.Days) != 3 || o.Days[2].Flags&reading.FlagNoUse == 0 || o.Days[0].Day != "2026-03-02" || math.Abs(o.Days[0].Consumption-0.06) > 1e-9 || o.Days[0].HoursWithUse != 1 {
		t.Errorf("days: %+v", o.Days)
	}
}

// A restart between any two readings, with the state persisted and
// restored, must give the same output as an uninterrupted run.
func TestStateRoundTrip(t *testing.T) {
	o := samples.Options{Days: 2, Seed: 4, Meters: 4, Interval: time.Minute}
	var rs []reading.Reading
	if err := samples.Run(context.Background(), o, samples.Fleet(o), func(row samples.Row) error {
		rs = append(rs, reading.Reading{Meter: row.Meter, Received: row.Time, Has: reading.HasForward | reading.HasReverse,
			Forward: row.Forward, Reverse: row.Reverse})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := run(New(Config{}), rs)
	a := New(Config{})
	var got Output
	cut := len(rs) * 2 / 3
	for _, r := range rs[:cut] {
		a.PushTo(&got, r)
	}
	b := New(Config{})
	maxLen := 0
	for _, id := range a.Meters() {
		st, err := a.State(id)
		if err != nil {
			t.Fatal(err)
		}
		maxLen = max(maxLen, len(st))
		if err := b.SetState(id, st); err != nil {
			t.Fatal(err)
		}
	}
	bo := run(b, rs[cut:])
	got.Readings = append(got.Readings, bo.Readings...)
	if len(got.Readings) != len(want.Readings) {
		t.Fatalf("%d readings after restart, %d without", len(got.Readings), len(want.Readings))
	}
	sum := func(rs []reading.Reading) (c, p float64) {
		for _, r := range rs {
			c += r.Filter.Consumption
			p += r.Filter.Phantom
		}
		return
	}
	wc, wp := sum(want.Readings)
	gc, gp := sum(got.Readings)
	if math.Abs(wc-gc) > 1e-9 || math.Abs(wp-gp) > 1e-9 {
		t.Errorf("restart changed the result: consumption %.6f vs %.6f, phantom %.6f vs %.6f", gc, wc, gp, wp)
	}
	if maxLen > 2400 {
		t.Errorf("state of %d bytes: want small", maxLen)
	}
	st, _ := a.State(a.Meters()[0])
	for _, bad := range [][]byte{nil, st[:len(st)/2], append(bytes.Clone(st), 0), {9}} {
		if err := New(Config{}).SetState("x", bad); !errors.Is(err, ErrState) {
			t.Errorf("state %d bytes: err %v, want ErrState", len(bad), err)
		}
	}
}

func FuzzSetState(f *testing.F) {
	fl := New(Config{})
	run(fl, []reading.Reading{rd("a", 0, 1, 0), rd("a", time.Minute, 1.01, 0.001), rd("a", 2*time.Minute, 1.02, 0.001)})
	fl2 := New(Config{})
	for _, r := range []reading.Reading{rd("a", 0, 1, 0), rd("a", time.Minute, 1.01, 0.001)} {
		fl2.Push(r)
	}
	fl3 := New(Config{}) // in a flow run, held back, with a backflow episode open
	for i := range 8 {
		r := rd("a", time.Duration(i)*10*time.Second, 1, 0.001*float64(i))
		r.Has |= reading.HasFlow
		r.Flow = -0.02
		fl3.Push(r)
	}
	for _, x := range []*Filter{fl, fl2, fl3} {
		st, _ := x.State("a")
		f.Add(st)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x := New(Config{})
		if err := x.SetState("a", b); err != nil {
			return
		}
		// A restored state must keep working.
		x.Push(rd("a", time.Hour, 5, 1))
		x.Flush()
		x.FlushDays()
	})
}

func TestBurstAndStuck(t *testing.T) {
	var rs []reading.Reading
	f := 1.0
	for m := 0; m <= 40; m++ {
		if m > 0 && m <= 30 {
			f += 0.025 // 1.5 m3/h for 30 min
		}
		rs = append(rs, rd("b", time.Duration(m)*time.Minute, f, 0))
	}
	o := run(New(Config{}), rs)
	var burst int
	for _, e := range o.Events {
		if e.Type == "burst" {
			burst++
		}
	}
	if burst != 1 || o.Readings[29].Filter.Flags&reading.FlagBurst == 0 || o.Readings[0].Filter.Flags&reading.FlagBurst != 0 {
		t.Errorf("burst events %d; flags at 1 min %v, at 30 min %v", burst, o.Readings[0].Filter.Flags.Names(), o.Readings[29].Filter.Flags.Names())
	}

	// Totals frozen while the meter reports 0.5 m3/h: a fault once the
	// reported flow would have moved the totaliser many steps.
	rs = rs[:0]
	for m := 0; m <= 30; m++ {
		r := rd("s", time.Duration(m)*time.Minute, 1+float64(min(m, 2))*0.001, 0)
		r.Has |= reading.HasFlow
		r.Flow = 0.5
		rs = append(rs, r)
	}
	o = run(New(Config{}), rs)
	if o.Readings[2].Filter.Flags&reading.FlagMeterFault != 0 || o.Readings[len(o.Readings)-1].Filter.Flags&reading.FlagMeterFault == 0 {
		t.Errorf("stuck totals: flags at 3 min %v, at 30 min %v", o.Readings[2].Filter.Flags.Names(), o.Readings[len(o.Readings)-1].Filter.Flags.Names())
	}
}

// End releases the credit still waiting for a reverse step into the last
// interval; Flush keeps it for the daemon's restart.
func TestEndReleasesCredit(t *testing.T) {
	in := []reading.Reading{rd("a", 0, 1, 0), rd("a", 10*time.Second, 1.004, 0.003), rd("a", 20*time.Second, 1.014, 0.003)}
	sum := func(o Output) (c float64) {
		for _, r := range o.Readings {
			c += r.Filter.Consumption
		}
		return c
	}
	f := New(Config{})
	var o Output
	for _, r := range in {
		f.PushTo(&o, r)
	}
	flushed := sum(f.Flush())
	f2 := New(Config{})
	for _, r := range in {
		f2.PushTo(&o, r)
	}
	ended := sum(f2.End())
	if math.Abs(ended-0.010) > 1e-9 || math.Abs(flushed-0.009) > 1e-9 {
		t.Errorf("consumption: End %.4f (want 0.010), Flush %.4f (want 0.009: one step waits)", ended, flushed)
	}
}

// A 10 L totaliser stepping every 30 min all night passes the coarse step
// test; where the meter reports its instantaneous flow, only a night whose
// polls show forward flow is a leak (night use and surge steps do not).
func TestCoarseLeakNeedsFlow(t *testing.T) {
	for _, tt := range []struct {
		name string
		flow float64
		has  bool
		leak bool
	}{
		{"flow all night", 0.02, true, true},
		{"no flow between steps", 0, true, false},
		{"flow not reported", 0, false, true},
	} {
		var in []reading.Reading
		for i := 0; i <= 6*12; i++ {
			r := rd("c", time.Duration(i)*5*time.Minute, 1+0.01*float64(i/6), 0)
			if tt.has {
				r.Has |= reading.HasFlow
				r.Flow = tt.flow
			}
			in = append(in, r)
		}
		if got := leakFlagged(in); got != tt.leak {
			t.Errorf("%s: leak %v, want %v", tt.name, got, tt.leak)
		}
	}
}

// A state saved by the first release (version 1, before the span learner)
// is restored: the held-back intervals and the learned ratio survive an
// upgrade, only the old learner's episodes are dropped.
func TestStateVersion1(t *testing.T) {
	b, err := os.ReadFile("testdata/state-v1.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	st, err := hex.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.ParseFloat(lines[3], 64)
	f := New(Config{})
	if err := f.SetState("m", st); err != nil {
		t.Fatalf("version 1 state refused: %v", err)
	}
	if got := f.Ratio("m"); math.Abs(got-want) > 1e-6 {
		t.Errorf("ratio %v after restore, want the old %v", got, want)
	}
	o := f.Flush()
	if len(o.Readings) != 90 { // 15 min of 10-s polls were held back
		t.Errorf("%d held-back intervals released, want 90", len(o.Readings))
	}
	next, err := f.State("m")
	if err != nil || next[0] != stateVersion {
		t.Fatalf("state written back as version %d (%v), want %d", next[0], err, stateVersion)
	}
}

// A state saved before the monotonic timeline and the backflow episodes
// (version 2) is restored: the learned ratio, the held-back intervals and
// the backflow episode under way survive, and its event is not sent again
// (it went out at 5 L).
func TestStateVersion2(t *testing.T) {
	f, o := restoreOld(t, "testdata/state-v2.txt")
	if ev := backflowEvents(o.Events); len(ev) > 0 {
		t.Errorf("backflow event sent again after the upgrade: %+v", ev)
	}
	next, err := f.State("m")
	if err != nil || next[0] != stateVersion {
		t.Fatalf("state written back as version %d (%v), want %d", next[0], err, stateVersion)
	}
	g := New(Config{})
	if err := g.SetState("m", next); err != nil {
		t.Fatalf("version %d state refused: %v", stateVersion, err)
	}
}

// A state saved before the backflow's evidence and the flow runs (version
// 3, the last release) is restored: the held-back intervals and the
// backflow episode under way survive, and its one event goes out at the
// end, with its volume and evidence.
func TestStateV3Restores(t *testing.T) {
	f, o := restoreOld(t, "testdata/state-v3.txt")
	events := backflowEvents(o.Events)
	if len(events) != 1 {
		t.Fatalf("backflow events %+v, want one", events)
	}
	if v, _ := strconv.ParseFloat(events[0].Attrs["volume_l"], 64); math.Abs(v-9) > 0.5 || events[0].Attrs["evidence"] != "volume" {
		t.Errorf("backflow event %v, want about 9 L on its volume", events[0].Attrs)
	}
	next, err := f.State("m")
	if err != nil || next[0] != stateVersion {
		t.Fatalf("state written back as version %d (%v), want %d", next[0], err, stateVersion)
	}
}

// restoreOld restores meter "m" from a state fixture of an older version
// (line 3 the state in hex, line 4 the ratio it had learned), checks the
// ratio and that its 90 held-back intervals come out, and ends the data.
func restoreOld(t *testing.T, path string) (*Filter, Output) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	st, err := hex.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.ParseFloat(lines[3], 64)
	f := New(Config{})
	if err := f.SetState("m", st); err != nil {
		t.Fatalf("state version %d refused: %v", st[0], err)
	}
	if got := f.Ratio("m"); math.Abs(got-want) > 1e-6 {
		t.Errorf("ratio %v after restore, want the old %v", got, want)
	}
	o := f.End()
	if len(o.Readings) != 90 {
		t.Errorf("%d held-back intervals released, want 90", len(o.Readings))
	}
	return f, o
}

// backflowEvents keeps the backflow events of evs.
func backflowEvents(evs []reading.Event) []reading.Event {
	var out []reading.Event
	for _, e := range evs {
		if e.Type == "backflow" {
			out = append(out, e)
		}
	}
	return out
}

// A forward step polled while the water runs backwards (negative
// instantaneous flow) is surge activity: it waits for its reverse step as
// credit, where the same step with no sign of a surge is consumption.
func TestReverseFlowMarksSurge(t *testing.T) {
	for _, tt := range []struct {
		name string
		flow float64
		cons float64
	}{{"reverse flow at the poll", -0.2, 0}, {"forward flow at the poll", 0.2, 0.01}} {
		a, b := rd("a", 0, 1, 0), rd("a", time.Minute, 1.01, 0)
		b.Has |= reading.HasFlow
		b.Flow = tt.flow
		o := run(New(Config{}), []reading.Reading{a, b})
		if len(o.Readings) != 1 || math.Abs(o.Readings[0].Filter.Consumption-tt.cons) > 1e-9 {
			t.Errorf("%s: %+v, want consumption %v", tt.name, o.Readings, tt.cons)
		}
	}
}

// A 12 L/h leak on a 1 L totaliser whose flow stops for 40 min (a real
// backflow, say) fails the quiet-gap test; the meter's own flow reading at
// or above the leak threshold in most of the night's polls still finds it.
func TestLeakFromFlowReadings(t *testing.T) {
	for _, tt := range []struct {
		name string
		has  bool
		leak bool
	}{{"flow reported", true, true}, {"flow not reported", false, false}} {
		var in []reading.Reading
		f := 1.0
		for i := 0; i <= 6*12; i++ {
			at := time.Duration(i) * 5 * time.Minute
			gap := at > 2*time.Hour && at <= 2*time.Hour+40*time.Minute
			if i > 0 && !gap {
				f += 0.001
			}
			r := rd("l", at, f, 0)
			if tt.has {
				r.Has |= reading.HasFlow
				if !gap {
					r.Flow = 0.012
				}
			}
			in = append(in, r)
		}
		if got := leakFlagged(in); got != tt.leak {
			t.Errorf("%s: leak %v, want %v", tt.name, got, tt.leak)
		}
	}
}

// leakFlagged filters in and reports whether any interval was flagged leak.
func leakFlagged(in []reading.Reading) bool {
	for _, r := range run(New(Config{}), in).Readings {
		if r.Filter.Flags&reading.FlagLeak != 0 {
			return true
		}
	}
	return false
}
