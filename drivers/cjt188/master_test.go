package cjt188

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"tidegate/drivers/link"
	p "tidegate/protocol/cjt188"
	"tidegate/reading"
	"tidegate/simulator"
	"tidegate/simulator/water"
)

var (
	t0      = time.Date(2026, 12, 1, 21, 30, 0, 0, time.UTC)
	addrA   = mustAddr("78330011223344")
	addrB   = mustAddr("78330000000002")
	lineCfg = link.Config{Baud: 2400, Parity: "E"}
)

func mustAddr(s string) p.Address {
	a, err := p.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// simMeter is metersim's CJ/T 188 meter with fixed values: the meter side
// of the in-memory line is the simulator's real protocol logic.
func simMeter(t *testing.T, cfg simulator.CJTMeterConfig, fwd float64, clockOff time.Duration) *simulator.CJTMeter {
	t.Helper()
	snap := func(now time.Time) water.Snapshot {
		return water.Snapshot{Time: t0, MeterClock: t0.Add(clockOff), Forward: fwd, Reverse: 0.25}
	}
	m, err := simulator.NewCJTMeter(cfg, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lineTo(ms ...*simulator.CJTMeter) *memLine {
	return &memLine{cfg: lineCfg, respond: func(req []byte) []byte {
		var out [][]byte
		for _, m := range ms {
			if r := m.Respond(req, t0); r != nil {
				out = append(out, r)
			}
		}
		return together(out)
	}}
}

// together is what a receiver hears of several transmitters at once on
// RS-485: the bytes AND together (a dominant 0 wins).
func together(fs [][]byte) []byte {
	if len(fs) == 1 {
		return fs[0]
	}
	n := 0
	for _, f := range fs {
		n = max(n, len(f))
	}
	out := bytes.Repeat([]byte{0xFF}, n)
	for _, f := range fs {
		for i, c := range f {
			out[i] &= c
		}
	}
	return out
}

func newTestClient(l Line, opt Options) *Client {
	c := NewClient(l, opt, time.UTC)
	c.now = func() time.Time { return t0 }
	return c
}

func TestPollCurrent(t *testing.T) {
	low := p.LowFirst
	meter := simMeter(t, simulator.CJTMeterConfig{ID: "a", Address: addrA, DIOrder: p.LowFirst, Preamble: 2, ReplyOrder: &low, SettlementDay: 0}, 123.456, 90*time.Second)
	line := lineTo(meter)
	c := newTestClient(line, Options{Preamble: 3})
	res, err := c.Poll(context.Background(), PollMeter{Meter: Meter{ID: "a", Address: addrA, Order: p.LowFirst}}, true)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Reading
	// The meter shows its net total with two decimals: 123.456 - 0.25.
	if r.Forward != 123.2 || r.Has&reading.HasReverse != 0 || r.Quality != reading.QualityGood {
		t.Fatalf("reading %+v", r)
	}
	if res.Drift != 90*time.Second || !r.MeterTime.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("drift %v, meter time %v", res.Drift, r.MeterTime)
	}
	if res.Due == nil || res.Due.Storage != 1 || res.Due.Forward != 123.2 || res.Due.Has&reading.HasMeterTime != 0 {
		t.Fatalf("due %+v", res.Due)
	}
	req := line.writes[0]
	if !bytes.HasPrefix(req, []byte{0xFE, 0xFE, 0xFE, 0x68}) || req[14] != 0x1F || req[15] != 0x90 {
		t.Fatalf("request % X: want 3 FE and DI 1F 90", req)
	}
	if !bytes.HasPrefix(r.Raw, []byte{0xFE, 0xFE, 0x68}) {
		t.Fatalf("raw % X", r.Raw)
	}
	// The SER goes up with each request and the answer must echo it.
	if _, err := c.Poll(context.Background(), PollMeter{Meter: Meter{ID: "a", Address: addrA, Order: p.LowFirst}}, false); err != nil {
		t.Fatal(err)
	}
	if line.writes[1][16] != line.writes[0][16]+1 {
		t.Fatalf("SER %02X then %02X", line.writes[0][16], line.writes[1][16])
	}
}

// A meter that answers in the other DI order is read all the same.
func TestReplyInOtherDIOrder(t *testing.T) {
	hi := p.HighFirst
	meter := simMeter(t, simulator.CJTMeterConfig{ID: "a", Address: addrA, DIOrder: p.LowFirst, ReplyOrder: &hi}, 5, 0)
	c := newTestClient(lineTo(meter), Options{})
	if _, err := c.Poll(context.Background(), PollMeter{Meter: Meter{ID: "a", Address: addrA, Order: p.LowFirst}}, false); err != nil {
		t.Fatal(err)
	}
	// Sent in the order the meter does not understand: silence.
	_, err := c.Poll(context.Background(), PollMeter{Meter: Meter{ID: "a", Address: addrA, Order: p.HighFirst}}, false)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("wrong order: %v", err)
	}
}

func TestLineFaults(t *testing.T) {
	ctx := context.Background()
	pm := PollMeter{Meter: Meter{ID: "a", Address: addrA}}
	good := func() *memLine { return lineTo(simMeter(t, simulator.CJTMeterConfig{ID: "a", Address: addrA}, 7, 0)) }

	// A late answer to the previous request (its SER) comes first: skipped.
	l := good()
	c := newTestClient(l, Options{})
	if _, err := c.Poll(ctx, pm, false); err != nil {
		t.Fatal(err)
	}
	l.late = l.respond(l.writes[0])
	if res, err := c.Poll(ctx, pm, false); err != nil || res.Reading.Forward != 6.75 {
		t.Fatalf("after a late answer: %+v %v", res.Reading, err)
	}
	if c.Counters().Foreign.Load() != 1 {
		t.Fatalf("late answer not counted: %d", c.Counters().Foreign.Load())
	}

	// A late answer alone, the right one never comes: foreign, not good.
	l = good()
	c = newTestClient(l, Options{})
	c.Poll(ctx, pm, false)
	first := l.writes[0]
	l.respond = func([]byte) []byte { return nil }
	l.late = lineTo(simMeter(t, simulator.CJTMeterConfig{ID: "a", Address: addrA}, 7, 0)).respond(first)
	if _, err := c.Poll(ctx, pm, false); !errors.Is(err, ErrForeign) || !errors.Is(err, p.ErrSER) {
		t.Fatalf("only a late answer: %v", err)
	}

	// The converter echoes the request; stray bytes before 68; RSSI after 16.
	l = good()
	inner := l.respond
	l.respond = func(req []byte) []byte {
		return append(append(append(append([]byte(nil), req...), 0xFF, 0x00), inner(req)...), 0xC4, 0x3A)
	}
	c = newTestClient(l, Options{Preamble: 2})
	if res, err := c.Poll(ctx, pm, false); err != nil || res.Reading.Forward != 6.75 {
		t.Fatalf("echo, stray, trailing: %+v %v", res.Reading, err)
	}
	if c.Counters().Echoes.Load() != 1 || c.Counters().Stray.Load() < 2 {
		t.Fatalf("echoes %d stray %d", c.Counters().Echoes.Load(), c.Counters().Stray.Load())
	}

	// A bad checksum: garbled, and the codec's reason is kept.
	l = good()
	inner = l.respond
	l.respond = func(req []byte) []byte { b := inner(req); b[len(b)-2]++; return b }
	c = newTestClient(l, Options{})
	_, err := c.Poll(ctx, pm, false)
	if !errors.Is(err, ErrGarbled) || !errors.Is(err, p.ErrChecksum) || !IsMeterError(err) {
		t.Fatalf("checksum: %v", err)
	}

	// Half a frame: truncated.
	l = good()
	inner = l.respond
	l.respond = func(req []byte) []byte { b := inner(req); return b[:len(b)/2] }
	if _, err := newTestClient(l, Options{}).Poll(ctx, pm, false); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}

	// Another meter's address in the answer.
	l = good()
	inner = l.respond
	l.respond = func(req []byte) []byte {
		b := inner(req)
		b[2]++
		b[len(b)-2] = p.Checksum(b[:len(b)-2])
		return b
	}
	if _, err := newTestClient(l, Options{}).Poll(ctx, pm, false); !errors.Is(err, ErrForeign) {
		t.Fatalf("foreign: %v", err)
	}

	// Silence.
	if res, err := newTestClient(&memLine{cfg: lineCfg}, Options{}).Poll(ctx, pm, false); !errors.Is(err, ErrTimeout) || res.Reading.Quality != reading.QualityError {
		t.Fatalf("silence: %v %+v", err, res.Reading)
	}
}

func TestValveAndRefusal(t *testing.T) {
	ctx := context.Background()
	withValve := simMeter(t, simulator.CJTMeterConfig{ID: "a", Address: addrA, Valve: true, Layout: p.MirroredLayout}, 1, 0)
	c := newTestClient(lineTo(withValve), Options{})
	mt := Meter{ID: "a", Address: addrA, Layout: p.MirroredLayout}
	st, ok, err := c.Valve(ctx, mt, false)
	if err != nil || !ok || st.Valve(p.MirroredLayout) != p.ValveStateClosed || !withValve.ValveClosed() {
		t.Fatalf("close: % X %v %v", st, ok, err)
	}
	res, err := c.Poll(ctx, PollMeter{Meter: mt}, false)
	if err != nil || res.Reading.Status&reading.StatusValveClosed == 0 {
		t.Fatalf("status after close: %v %v", res.Reading.Status.Names(), err)
	}
	noValve := simMeter(t, simulator.CJTMeterConfig{ID: "b", Address: addrB}, 1, 0)
	_, _, err = newTestClient(lineTo(noValve), Options{}).Valve(ctx, Meter{ID: "b", Address: addrB}, false)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("meter without valve: %v", err)
	}
}

func TestReadAddress(t *testing.T) {
	ctx := context.Background()
	a := simMeter(t, simulator.CJTMeterConfig{ID: "a", Address: addrA, Preamble: 2}, 1, 0)
	b := simMeter(t, simulator.CJTMeterConfig{ID: "b", Address: addrB}, 1, 0)
	f, err := newTestClient(lineTo(a), Options{}).ReadAddress(ctx, p.HighFirst)
	if err != nil || f.Several || f.Count != 1 || f.Address != addrA {
		t.Fatalf("one meter: %+v %v", f, err)
	}
	f, err = newTestClient(lineTo(a, b), Options{}).ReadAddress(ctx, p.HighFirst)
	if err != nil || !f.Several || f.Count < 2 {
		t.Fatalf("two meters: %+v %v", f, err)
	}
	// Two meters whose answers arrive one after the other (not garbled):
	// still several, never the first one's address.
	l := lineTo(a)
	inner := l.respond
	l.respond = func(req []byte) []byte { return append(inner(req), b.Respond(req, t0)...) }
	if f, _ := newTestClient(l, Options{}).ReadAddress(ctx, p.HighFirst); !f.Several {
		t.Fatalf("two frames: %+v", f)
	}
	if f, _ := newTestClient(&memLine{cfg: lineCfg}, Options{}).ReadAddress(ctx, p.HighFirst); f.Count != 0 || f.Several {
		t.Fatalf("nobody: %+v", f)
	}
}

func TestDecodeDueDateAndStatus(t *testing.T) {
	cur := p.Current{
		Volume: p.Quantity{Value: 10, Unit: p.UnitM3}, Settlement: p.Quantity{Value: 8, Unit: p.UnitM3},
		Clock:  p.Clock{Year: 2026, Month: 12, Day: 1, Hour: 21, Minute: 0, Second: 0},
		Status: p.Status{0xE0, 0},
	}
	res, err := Decode(PollMeter{Meter: Meter{ID: "x", Layout: p.MirroredLayout}, SettlementDay: 15}, cur, nil, t0, time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	if res.Due == nil || !res.Due.MeterTime.Equal(want) || res.Due.Forward != 8 {
		t.Fatalf("due %+v", res.Due)
	}
	if s := res.Reading.Status; s&reading.StatusMeterError == 0 || s&reading.StatusLowBattery == 0 {
		t.Fatalf("mirrored E0 (valve abnormal, battery low): %v", s.Names())
	}
	if res.Drift != -30*time.Minute {
		t.Fatalf("drift %v", res.Drift)
	}
	cur.Volume.Unit = p.UnitKWh
	if _, err := Decode(PollMeter{}, cur, nil, t0, time.UTC, false); !errors.Is(err, ErrNoVolume) {
		t.Fatalf("kWh: %v", err)
	}
}

func TestAnswerTimeoutFromBaud(t *testing.T) {
	slow, fast := AnswerTimeout(link.Config{Baud: 2400}), AnswerTimeout(link.Config{Baud: 9600})
	if slow <= fast || slow < 340*time.Millisecond || fast > 240*time.Millisecond {
		t.Fatalf("2400: %v, 9600: %v", slow, fast)
	}
}

// A meter's own zone (meters[].timezone) places its clock, whatever the
// client's: the same wall clock read as Shanghai time is 8 h earlier.
func TestPollMeterZone(t *testing.T) {
	low := p.LowFirst
	meter := simMeter(t, simulator.CJTMeterConfig{ID: "a", Address: addrA, DIOrder: p.LowFirst, Preamble: 2, ReplyOrder: &low}, 1, 90*time.Second)
	c := newTestClient(lineTo(meter), Options{Preamble: 3})
	cst := time.FixedZone("CST", 8*3600)
	res, err := c.Poll(context.Background(), PollMeter{Meter: Meter{ID: "a", Address: addrA, Order: p.LowFirst}, Location: cst}, false)
	if err != nil {
		t.Fatal(err)
	}
	if mt := res.Reading.MeterTime; !mt.Equal(t0.Add(90*time.Second-8*time.Hour)) || mt.Location() != cst {
		t.Fatalf("meter time %v, want the wall clock %v in +08:00", mt, t0.Add(90*time.Second))
	}
}
