package mbus

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"tidegate/drivers/link"
	pmbus "tidegate/protocol/mbus"
	"tidegate/reading"
)

// The tests in this file drive the master's protocol logic over the
// in-memory line (memline_test.go): no pty, no clock, no sleeping, so load
// cannot change what they see. The pty tests prove the real I/O path.

func TestLogicSndNke(t *testing.T) {
	long := rspUD(t, 5)
	l := newMemLine(2400, scripted(t,
		step{sndNke(5), []event{got(pmbus.Ack)}},
		step{sndNke(5), []event{silence}},
		step{sndNke(5), []event{got(0x00, 0x42), silence}},
		step{sndNke(5), []event{got(long...)}},
		step{sndNke(5), []event{got(long[:7]...), silence}},
	))
	m := NewMaster(l, Options{}, nil)
	ctx := context.Background()
	for i, want := range []error{nil, ErrTimeout, ErrChecksum, ErrUnexpected, ErrTruncated} {
		if err := m.Init(ctx, 5); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("SND_NKE %d: %v, want %v", i+1, err, want)
		}
	}
	c := m.Counters()
	if c.Requests.Load() != 5 || c.Timeouts.Load() != 1 || c.Checksum.Load() != 1 || c.Truncated.Load() != 1 || c.Stray.Load() < 2 {
		t.Fatalf("counters: req %d to %d sum %d trunc %d stray %d", c.Requests.Load(), c.Timeouts.Load(), c.Checksum.Load(), c.Truncated.Load(), c.Stray.Load())
	}
}

// TestLogicIdle: before every request the master keeps the standard's 11
// bit times of silence, counted from the last byte on the line, and no
// more (it used to be 11 bit times + 50 ms, 0.13 of a reading at 2400).
func TestLogicIdle(t *testing.T) {
	b := &memBus{meters: []*fakeMeter{{primary: 5, lastFCB: -1, telegrams: [][]byte{volumeRecord}}}}
	m, l := memMaster(t, b, Options{})
	if err := m.Init(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := m.ReadPrimary(context.Background(), 5); err != nil {
			t.Fatal(err)
		}
	}
	want := 11 * time.Second / 2400
	if len(l.gaps) != 4 {
		t.Fatalf("%d waits for 4 requests: %v", len(l.gaps), l.gaps)
	}
	for i, g := range l.gaps {
		if g != want {
			t.Fatalf("wait %d before a request: %v, want %v (11 bit times)", i, g, want)
		}
	}

	// A read by secondary address does not wait out the answer window
	// after its selection's lone E5 (a scan does: a second E5 may come).
	sec := Secondary{ID: 12345678, Manufacturer: 0x2C2D, Version: 1, Medium: 7}
	b = &memBus{meters: []*fakeMeter{{primary: 5, sec: sec, lastFCB: -1, telegrams: [][]byte{volumeRecord}}}}
	m, l = memMaster(t, b, Options{})
	if _, err := m.ReadSecondary(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	// Reads: the E5, the silence after it, the answer.
	if len(l.budgets) != 3 || l.budgets[1] > want {
		t.Fatalf("read budgets %v: after the E5 the master waited more than %v", l.budgets, want)
	}
}

// TestLogicFCB: FCB set after SND_NKE, toggled only after an answer (a
// repeat after a lost answer asks for the same telegram), kept per meter.
func TestLogicFCB(t *testing.T) {
	a5, a6 := rspUD(t, 5, volumeRecord...), rspUD(t, 6, volumeRecord...)
	l := newMemLine(2400, scripted(t,
		step{sndNke(5), []event{got(pmbus.Ack)}},
		step{reqUD2(true, 5), []event{got(a5...)}},
		step{reqUD2(false, 5), []event{silence}}, // lost answer
		step{reqUD2(false, 5), []event{got(a5...)}},
		step{reqUD2(true, 5), []event{got(a5...)}},
		step{reqUD2(true, 6), []event{got(a6...)}}, // another meter, its own FCB
		step{reqUD2(false, 5), []event{got(a5...)}},
		step{sndNke(5), []event{got(pmbus.Ack)}},
		step{reqUD2(true, 5), []event{got(a5...)}},  // restarted
		step{reqUD2(false, 6), []event{got(a6...)}}, // untouched by 5's SND_NKE
	))
	m := NewMaster(l, Options{}, nil)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(addr byte) error { _, err := m.ReadPrimary(ctx, addr); return err }
	must(m.Init(ctx, 5))
	must(read(5))
	if err := read(5); !errors.Is(err, ErrTimeout) {
		t.Fatalf("lost answer: %v", err)
	}
	must(read(5))
	must(read(5))
	must(read(6))
	must(read(5))
	must(m.Init(ctx, 5))
	must(read(5))
	must(read(6))
}

func TestMultiTelegram(t *testing.T) {
	more := append(append([]byte(nil), volumeRecord...), 0x1F)
	newMeter := func() *fakeMeter {
		return &fakeMeter{primary: 9, lastFCB: -1, strict: true, telegrams: [][]byte{more, more, volumeRecord}}
	}
	numbers := func(ts []Telegram) []byte {
		var out []byte
		for _, tg := range ts {
			out = append(out, tg.Data[8])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		max  int
		want []byte
	}{{"all", 0, []byte{0, 1, 2}}, {"capped", 2, []byte{0, 1}}} {
		t.Run(tc.name, func(t *testing.T) {
			meter := newMeter()
			m, _ := memMaster(t, &memBus{meters: []*fakeMeter{meter}}, Options{MaxTelegrams: tc.max})
			if err := m.Init(context.Background(), 9); err != nil {
				t.Fatal(err)
			}
			ts, err := m.ReadPrimary(context.Background(), 9)
			if err != nil || !slices.Equal(numbers(ts), tc.want) {
				t.Fatalf("telegrams %v, err %v; want %v", numbers(ts), err, tc.want)
			}
			if !slices.Equal(meter.fcbs, []bool{true, false, true}[:len(tc.want)]) {
				t.Fatalf("FCBs %v", meter.fcbs)
			}
		})
	}
	t.Run("lost answer mid-read", func(t *testing.T) {
		meter := newMeter()
		b := &memBus{meters: []*fakeMeter{meter}, fault: func(n int, _, ans []byte) []event {
			if n == 3 { // the second REQ_UD2: the meter sent telegram 1, the master heard nothing
				return []event{silence}
			}
			return []event{got(ans...)}
		}}
		m, _ := memMaster(t, b, Options{})
		ctx := context.Background()
		if err := m.Init(ctx, 9); err != nil {
			t.Fatal(err)
		}
		ts, err := m.ReadPrimary(ctx, 9)
		if !errors.Is(err, ErrTimeout) || !slices.Equal(numbers(ts), []byte{0}) {
			t.Fatalf("telegrams %v, err %v; want [0] and a timeout", numbers(ts), err)
		}
		// The same FCB again: the meter repeats telegram 1, then goes on.
		ts, err = m.ReadPrimary(ctx, 9)
		if err != nil || !slices.Equal(numbers(ts), []byte{1, 2}) {
			t.Fatalf("telegrams %v, err %v; want [1 2]", numbers(ts), err)
		}
	})
}

func TestReadSecondary(t *testing.T) {
	a := &fakeMeter{sec: Secondary{ID: 11112222, Manufacturer: 0x1111, Version: 2, Medium: 7}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
	b := &fakeMeter{sec: Secondary{ID: 11112222, Manufacturer: 0x2222, Version: 2, Medium: 7}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
	bus := &memBus{meters: []*fakeMeter{a, b}}
	m, l := memMaster(t, bus, Options{})
	ctx := context.Background()
	for _, want := range []Secondary{a.sec, b.sec, a.sec} {
		ts, err := m.ReadSecondary(ctx, want)
		if err != nil {
			t.Fatalf("%v: %v", want, err)
		}
		got, _ := headerSecondary(ts[0].CI, ts[0].Data)
		if got != want {
			t.Fatalf("got %v, want %v", got, want)
		}
		// A selection, then REQ_UD2 to 253.
		n := len(l.requests)
		if !slices.Equal(l.requests[n-2], selectFrame(t, want.Pattern())) || l.requests[n-1][2] != pmbus.AddrNetworkLayer {
			t.Fatalf("requests % X / % X", l.requests[n-2], l.requests[n-1])
		}
	}
	idOnly := Secondary{ID: 11112222, Manufacturer: 0xFFFF, Version: 0xFF, Medium: 0xFF}
	if _, err := m.ReadSecondary(ctx, idOnly); !errors.Is(err, ErrCollision) {
		t.Fatalf("id-only selection of two meters: %v, want ErrCollision", err)
	}
	// Their E5s may AND into one: then the read's answers garble each other.
	bus.mergeAcks = true
	if _, err := m.ReadSecondary(ctx, idOnly); !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrCollision) {
		t.Fatalf("id-only selection, merged E5s: %v, want a garbled read", err)
	}
	if _, err := m.ReadSecondary(ctx, Secondary{ID: 99999999}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("absent meter: %v, want ErrTimeout", err)
	}
	// A meter that answers for another id is refused.
	other := &fakeMeter{primary: 1, sec: Secondary{ID: 33334444}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
	foreign := other.respond(pmbus.Frame{Kind: pmbus.KindShort, C: pmbus.CField(pmbus.CReqUd2), Address: 1})
	p := a.sec.Pattern()
	l2 := newMemLine(2400, scripted(t,
		step{selectFrame(t, p), []event{got(pmbus.Ack)}},
		step{reqUD2(true, pmbus.AddrNetworkLayer), []event{got(foreign...)}},
	))
	if _, err := NewMaster(l2, Options{}, nil).ReadSecondary(ctx, a.sec); !errors.Is(err, ErrWrongMeter) {
		t.Fatalf("foreign answer: %v, want ErrWrongMeter", err)
	}
}

func TestScanSecondary(t *testing.T) {
	for _, merge := range []bool{false, true} {
		meters := randomMeters(40, 11)
		// Two sharing an id, told apart only by a manufacturer nibble above
		// 9. (Were their answers also alike in every other byte, merged
		// E5s and an AND of the two answers that happens to be one of
		// them would hide the other: no selection can tell.)
		meters = append(meters,
			&fakeMeter{primary: 41, lastFCB: -1, telegrams: [][]byte{volumeRecord}, sec: Secondary{ID: 55550000, Manufacturer: 0xA5B1, Version: 0x01, Medium: 0x07}},
			&fakeMeter{primary: 42, lastFCB: -1, telegrams: [][]byte{volumeRecord}, sec: Secondary{ID: 55550000, Manufacturer: 0xB5B1, Version: 0x01, Medium: 0x07}})
		m, _ := memMaster(t, &memBus{meters: meters, mergeAcks: merge}, Options{})
		var last ScanProgress
		found, err := ScanSecondary(context.Background(), m, func(p ScanProgress) { last = p })
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, fm := range meters {
			want = append(want, fm.sec.String())
		}
		for _, s := range found {
			got = append(got, s.String())
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("merged E5s %v: found %v\nwant %v", merge, got, want)
		}
		if last.Found != len(meters) || int64(last.Probes) != m.Counters().Selects.Load() {
			t.Fatalf("progress: last %+v, selects %d", last, m.Counters().Selects.Load())
		}
	}
}

// TestLogicScanStops: a scan the line fails in the middle of returns what
// it found and an error naming what it did not cover, never a short list
// that looks complete.
func TestLogicScanStops(t *testing.T) {
	t.Run("secondary", func(t *testing.T) {
		meters := randomMeters(12, 5)
		var l *memLine
		b := &memBus{meters: meters}
		l = newMemLine(2400, func(req []byte) []event {
			if len(l.requests) == 30 {
				l.writeErr = errLine
			}
			return b.respond(req)
		})
		m := NewMaster(l, Options{}, nil)
		found, err := ScanSecondary(context.Background(), m, nil)
		var se *ScanError
		if !errors.Is(err, ErrScanIncomplete) || !errors.Is(err, errLine) || !errors.As(err, &se) || len(se.Left) == 0 {
			t.Fatalf("found %d, err %v; want ErrScanIncomplete with what is left", len(found), err)
		}
		// What is left and what was found cover every meter between them.
		for _, fm := range meters {
			in := slices.Contains(found, fm.sec)
			left := slices.ContainsFunc(se.Left, func(p Pattern) bool { return p.Matches(fm.sec) })
			if !in && !left {
				t.Fatalf("meter %v neither found nor in the range left %v", fm.sec, se.Left)
			}
		}
		if !strings.Contains(err.Error(), se.Left[0].String()) {
			t.Fatalf("error does not name the range: %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var l *memLine
		b := &memBus{meters: randomMeters(12, 5)}
		l = newMemLine(2400, func(req []byte) []event {
			if len(l.requests) == 5 {
				cancel()
			}
			return b.respond(req)
		})
		_, err := ScanSecondary(ctx, NewMaster(l, Options{}, nil), nil)
		if !errors.Is(err, ErrScanIncomplete) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	})
}

// TestFaults covers what can arrive instead of a clean answer.
func TestFaults(t *testing.T) {
	good := func(_ int, _, ans []byte) []event { return []event{got(ans...)} }
	for _, tc := range []struct {
		name   string
		bus    memBus
		meter  func(*fakeMeter)
		opt    Options
		want   error
		counts func(*Counters) int64
	}{
		{"silent", memBus{}, func(m *fakeMeter) { m.silent = true }, Options{}, ErrTimeout, func(c *Counters) int64 { return c.Timeouts.Load() }},
		{"checksum", memBus{}, func(m *fakeMeter) { m.badSum = true }, Options{}, ErrChecksum, func(c *Counters) int64 { return c.Checksum.Load() }},
		{"wrong address", memBus{}, func(m *fakeMeter) { m.wrongAddr = true }, Options{}, ErrWrongAddress, func(c *Counters) int64 { return c.WrongAddress.Load() }},
		{"truncated", memBus{fault: func(_ int, _, ans []byte) []event { return []event{got(ans[:20]...), silence} }}, nil, Options{}, ErrTruncated, func(c *Counters) int64 { return c.Truncated.Load() }},
		{"noise before answer", memBus{fault: func(_ int, _, ans []byte) []event { return []event{got(0x00, 0xFF, 0x68), got(ans...)} }}, nil, Options{}, nil, func(c *Counters) int64 { return c.Stray.Load() }},
		{"byte by byte", memBus{split: true, fault: nil}, nil, Options{}, nil, func(c *Counters) int64 { return c.Requests.Load() }},
		{"echo expected", memBus{echo: true, fault: good}, nil, Options{Echo: true}, nil, func(c *Counters) int64 { return c.Echoes.Load() }},
		{"echo unannounced", memBus{echo: true, fault: good}, nil, Options{}, nil, func(c *Counters) int64 { return c.Echoes.Load() }},
		{"echo missing", memBus{}, nil, Options{Echo: true}, ErrEcho, func(c *Counters) int64 { return c.Collisions.Load() }},
		{"echo garbled", memBus{fault: func(_ int, req, ans []byte) []event {
			e := append([]byte(nil), req...)
			e[1] ^= 0x40
			return []event{got(e...), got(ans...)}
		}}, nil, Options{Echo: true}, ErrEcho, func(c *Counters) int64 { return c.Collisions.Load() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meter := &fakeMeter{primary: 3, sec: Secondary{ID: 3}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
			if tc.meter != nil {
				tc.meter(meter)
			}
			b := tc.bus
			b.meters = []*fakeMeter{meter}
			m, _ := memMaster(t, &b, tc.opt)
			ts, err := m.ReadPrimary(context.Background(), 3)
			if tc.want == nil && (err != nil || len(ts) != 1) {
				t.Fatalf("err %v, %d telegrams; want one", err, len(ts))
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if n := tc.counts(m.Counters()); n == 0 {
				t.Fatalf("not counted: %+v", m.Counters())
			}
		})
	}
}

func memClient(t *testing.T, b *memBus) (*Client, *memLine) {
	l := newMemLine(2400, b.respond)
	return NewClient(l, Options{}), l
}

// TestLogicClientFaults: a faulty meter's failures are marked and counted
// with the right error, and the healthy meter beside it still reads, at
// once, whatever the faulty one left on the line.
func TestLogicClientFaults(t *testing.T) {
	answerTo := func(addr byte, req []byte) bool { return len(req) == 5 && req[2] == addr }
	for _, tc := range []struct {
		name  string
		fault func(req, ans []byte) []event // for requests to meter 2
		want  error
	}{
		{"no answer", func(req, ans []byte) []event { return nil }, ErrTimeout},
		{"late", func(req, ans []byte) []event { return []event{silence, got(ans...)} }, ErrTimeout},
		{"late, in pieces", func(req, ans []byte) []event { return []event{silence, got(ans[:9]...), got(ans[9:]...)} }, ErrTimeout},
		{"very late", func(req, ans []byte) []event { return []event{silence, silence, got(ans...)} }, ErrTimeout},
		{"checksum", func(req, ans []byte) []event {
			bad := append([]byte(nil), ans...)
			bad[len(bad)-2]++
			return []event{got(bad...)}
		}, ErrChecksum},
		{"truncated", func(req, ans []byte) []event { return []event{got(ans[:len(ans)-3]...)} }, ErrTruncated},
		{"garbled then more", func(req, ans []byte) []event { return []event{got(0x68, 0x10, 0x11), silence, got(ans...)} }, ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok := &fakeMeter{primary: 1, sec: Secondary{ID: 1}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
			bad := &fakeMeter{primary: 2, sec: Secondary{ID: 2}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
			b := &memBus{meters: []*fakeMeter{ok, bad}}
			b.fault = func(_ int, req, ans []byte) []event {
				if answerTo(2, req) && req[1] != pmbus.CSndNke {
					return tc.fault(req, ans)
				}
				return []event{got(ans...)}
			}
			c, l := memClient(t, b)
			ctx := context.Background()
			r, err := c.Poll(ctx, Meter{ID: "bad-2", Address: 2}, false)
			if !errors.Is(err, tc.want) || link.Classify(err) != link.FaultMeter {
				t.Fatalf("faulty meter: %v, want %v", err, tc.want)
			}
			if r.Quality != reading.QualityError || r.Meter != "bad-2" || r.Error == "" {
				t.Fatalf("faulty reading not marked: %+v", r)
			}
			for i := range 2 {
				r, err = c.Poll(ctx, Meter{ID: "ok-1", Address: 1}, true)
				if err != nil || r.Quality != reading.QualityGood || r.Has&reading.HasForward == 0 || math.Abs(r.Forward-12.345) > 1e-9 || len(r.Raw) == 0 {
					t.Fatalf("healthy meter, read %d: %v %+v", i, err, r)
				}
			}
			if strings.HasPrefix(tc.name, "late") && c.Counters().Stray.Load() == 0 {
				t.Fatalf("the late answer was not dropped as stray: %+v (flushed %d)", c.Counters(), l.flushed)
			}
		})
	}
}

// TestDeadMeterCost: a dead meter costs one request per poll, whether
// the poll would start it with SND_NKE or read it directly, by primary or
// by secondary address.
func TestDeadMeterCost(t *testing.T) {
	c, _ := memClient(t, &memBus{})
	for _, m := range []Meter{{ID: "p", Address: 4}, {ID: "s", Secondary: "12121212"}} {
		before := c.Counters().Requests.Load()
		for range 4 {
			if _, err := c.Poll(context.Background(), m, false); !errors.Is(err, ErrTimeout) {
				t.Fatalf("%s: %v, want ErrTimeout", m.ID, err)
			}
		}
		if n := c.Counters().Requests.Load() - before; n != 4 {
			t.Fatalf("%s: %d requests for 4 polls", m.ID, n)
		}
	}
}

// TestLogicClientSecondary reads by secondary address through the client
// with wildcards left in the manufacturer, version and medium fields.
func TestLogicClientSecondary(t *testing.T) {
	a := &fakeMeter{primary: 1, sec: Secondary{ID: 44556677, Manufacturer: 0x2C2D, Version: 0x1B, Medium: 7}, lastFCB: -1, strict: true, telegrams: [][]byte{volumeRecord}}
	b := &fakeMeter{primary: 2, sec: Secondary{ID: 44556678, Manufacturer: 0x0430, Version: 4, Medium: 7}, lastFCB: -1, strict: true, telegrams: [][]byte{volumeRecord}}
	c, _ := memClient(t, &memBus{meters: []*fakeMeter{a, b}})
	for _, m := range []Meter{{ID: "a", Secondary: "44556677"}, {ID: "b", Secondary: "44556678"}, {ID: "a", Secondary: "44556677"}} {
		res, err := c.PollResult(context.Background(), m, false)
		if err != nil || res.Reading.Quality != reading.QualityGood || math.Abs(res.Reading.Forward-12.345) > 1e-9 {
			t.Fatalf("%s: %v %+v", m.ID, err, res.Reading)
		}
		if got := res.Secondary.String()[:8]; got != m.Secondary {
			t.Fatalf("%s: answer from %s", m.ID, got)
		}
	}
	if _, err := c.Poll(context.Background(), Meter{ID: "x", Secondary: "4455667"}, false); err == nil || link.Classify(err) == link.FaultLine || !strings.Contains(err.Error(), "4455667") {
		t.Fatalf("bad secondary address: %v, want a configuration error", err)
	}
}

// TestFCBResetOnReselection (issue 14 item 4): a meter's FCB restarts
// whenever the meter is reset, whichever address form reached it. A meter
// clears its FCB on SND_NKE; after a failed poll the client selects the
// meter again and resets it with SND_NKE to 253, so the next REQ_UD2 must
// carry FCB set. The master used to reset the FCB kept under "253" while
// reading by the pattern's, so it sent the stale FCB and the meter
// answered with its previous telegram, read as if new.
func TestFCBResetOnReselection(t *testing.T) {
	for _, how := range []string{"secondary", "primary"} {
		t.Run(how, func(t *testing.T) {
			meter := &fakeMeter{primary: 8, sec: Secondary{ID: 80808080, Manufacturer: 0x2C2D, Version: 1, Medium: 7}, lastFCB: -1, strict: true, telegrams: [][]byte{volumeRecord}}
			deaf := map[int]bool{}
			b := &memBus{meters: []*fakeMeter{meter}}
			l := newMemLine(2400, func(req []byte) []event {
				if deaf[len(b.meters[0].fcbs)+1] && len(req) == 5 && req[1]&0x4F == pmbus.CReqUd2&0x4F {
					// The meter never hears this REQ_UD2 (noise on the line).
					deaf[len(b.meters[0].fcbs)+1] = false
					b.n++
					return nil
				}
				return b.respond(req)
			})
			c := NewClient(l, Options{})
			m := Meter{ID: "m", Secondary: "80808080"}
			if how == "primary" {
				m = Meter{ID: "m", Address: 8}
			}
			var access []byte
			poll := func() error {
				res, err := c.PollResult(context.Background(), m, true)
				if err == nil {
					access = append(access, res.Reading.Raw[7+10]) // header byte 10 of the first telegram
				}
				return err
			}
			deaf[2] = true // the second REQ_UD2 the meter would have seen is lost
			for i := range 5 {
				err := poll()
				if (i == 1) != (err != nil) {
					t.Fatalf("poll %d: %v", i+1, err)
				}
			}
			// Every good poll got a telegram the meter made for it.
			for i := 1; i < len(access); i++ {
				if access[i] <= access[i-1] {
					t.Fatalf("access numbers %v: a repeated telegram was read as new (FCBs sent %v)", access, meter.fcbs)
				}
			}
		})
	}
}

func TestReadPrimary(t *testing.T) {
	meter := &fakeMeter{primary: 5, sec: Secondary{ID: 12345678, Manufacturer: 0x2C2D, Version: 1, Medium: 7}, lastFCB: -1, strict: true,
		telegrams: [][]byte{volumeRecord}}
	m, _ := memMaster(t, &memBus{meters: []*fakeMeter{meter}}, Options{})
	ctx := context.Background()
	if err := m.Init(ctx, 5); err != nil {
		t.Fatalf("Init: %v", err)
	}
	for i := range 3 {
		ts, err := m.ReadPrimary(ctx, 5)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if len(ts) != 1 || ts[0].Address != 5 || ts[0].CI != 0x72 || ts[0].Data[10] != byte(i+1) {
			t.Fatalf("read %d: %d telegrams %+v", i, len(ts), ts)
		}
		sec, ok := headerSecondary(ts[0].CI, ts[0].Data)
		if !ok || sec != meter.sec {
			t.Fatalf("header %v %v, want %v", sec, ok, meter.sec)
		}
	}
	// FCB starts set after SND_NKE and toggles with every answered request.
	if want := []bool{true, false, true}; !slices.Equal(meter.fcbs, want) {
		t.Fatalf("FCB sequence %v, want %v", meter.fcbs, want)
	}
}

func TestTimeoutFromBaud(t *testing.T) {
	for _, tc := range []struct {
		baud int
		want time.Duration
	}{{300, 1186666666}, {2400, 192083333}, {9600, 85520833}} {
		m := NewMaster(newMemLine(tc.baud, nil), Options{}, nil)
		if got := m.Options().Timeout; got != tc.want {
			t.Errorf("baud %d: timeout %v, want %v", tc.baud, got, tc.want)
		}
	}
}

// TestInterruptedDrain: a write whose tcdrain a signal interrupted (EINTR,
// which Linux does not restart for that ioctl) has sent its frame; it is
// no line failure. It used to abort a secondary scan half-way, so the scan
// verb printed a short list as the whole bus.
func TestInterruptedDrain(t *testing.T) {
	meters := randomMeters(8, 3)
	b := &memBus{meters: meters}
	l := newMemLine(2400, b.respond)
	m := NewMaster(l, Options{}, nil)
	l.interrupt = 1000 // every write
	found, err := ScanSecondary(context.Background(), m, nil)
	if err != nil || len(found) != len(meters) {
		t.Fatalf("found %d of %d, err %v", len(found), len(meters), err)
	}
	if _, err := m.ReadPrimary(context.Background(), meters[0].primary); err != nil {
		t.Fatal(err)
	}
}

// answerEvents cuts answer into the line events a fuzzer chose: each cut
// byte is a position (mod the length); its top bit puts a silence there.
func answerEvents(answer, cuts []byte) []event {
	var evs []event
	at := 0
	for _, c := range cuts {
		if len(answer) == 0 {
			break
		}
		pos := int(c&0x7F) % (len(answer) + 1)
		if pos < at {
			continue
		}
		if pos > at {
			evs = append(evs, got(answer[at:pos]...))
			at = pos
		}
		if c&0x80 != 0 {
			evs = append(evs, silence)
		}
	}
	if at < len(answer) {
		evs = append(evs, got(answer[at:]...))
	}
	return evs
}

// FuzzMasterAnswer: whatever comes back to a REQ_UD2 or a selection, in
// whatever pieces and with silences anywhere, the master does not panic or
// hang, returns only telegrams from the polled address or a meter error,
// and a probe one of its results; and the next clean read works.
func FuzzMasterAnswer(f *testing.F) {
	long, _ := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CRspUd), Address: 5, CI: 0x72, Data: append(make([]byte, 12), volumeRecord...)})
	more, _ := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CRspUd), Address: 5, CI: 0x72, Data: append(append(make([]byte, 12), volumeRecord...), 0x1F)})
	other, _ := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CRspUd), Address: 6, CI: 0x72, Data: append(make([]byte, 12), volumeRecord...)})
	f.Add(long, []byte{})
	f.Add(other, []byte{})
	f.Add(long, []byte{0x84, 0x10})
	f.Add(append([]byte{0x00, 0x68}, long...), []byte{0x01, 0x83})
	f.Add(more, []byte{})
	f.Add([]byte{0xE5, 0xE5}, []byte{0x81})
	f.Add(reqUD2(true, 5), []byte{})
	f.Add([]byte{0x68, 0xFF, 0xFF, 0x68}, []byte{0x84})
	f.Fuzz(func(t *testing.T, answer, cuts []byte) {
		if len(cuts) > 64 {
			cuts = cuts[:64]
		}
		meter := &fakeMeter{primary: 5, sec: Secondary{ID: 5}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
		fuzzed := true
		l := newMemLine(2400, func(req []byte) []event {
			if fuzzed {
				fuzzed = false
				return answerEvents(answer, cuts)
			}
			f, _, err := pmbus.Decode(req)
			if err != nil {
				return nil
			}
			return []event{got(busAnswer([]*fakeMeter{meter}, f, false)...)}
		})
		m := NewMaster(l, Options{}, nil)
		ctx := context.Background()
		// More than the longest legal frame (261 bytes) at once is past a
		// transaction's byte cap: line noise, a line fault, is then right.
		noise := func(err error) bool { return len(answer) > 261 && errors.Is(err, link.ErrLineNoise) }
		ts, err := m.ReadPrimary(ctx, 5)
		if err != nil && link.Classify(err) != link.FaultMeter && !noise(err) {
			t.Fatalf("not a meter error: %v", err)
		}
		for _, tg := range ts {
			if tg.Address != 5 {
				t.Fatalf("telegram from %d accepted", tg.Address)
			}
		}
		l.pending, fuzzed = nil, true
		// An answer longer than a frame's byte cap is line noise to the
		// probe too: a line fault, said as such, never a hang.
		if r, err := m.Select(ctx, AllWild()); (err != nil && !noise(err)) || r > ProbeCollision {
			t.Fatalf("probe %v, %v", r, err)
		}
		l.pending = nil
		if ts, err := m.ReadPrimary(ctx, 5); err != nil || len(ts) != 1 {
			t.Fatalf("clean read after it: %d telegrams, %v", len(ts), err)
		}
	})
}

// TestWakeups: an answer arriving a character at a time, as at 2400 baud
// (one every 4.6 ms), is read in a few wake-ups, not one per character:
// once the frame's length is known the master sleeps for the rest's wire
// time. Waking for every character was most of a reading's CPU.
func TestWakeups(t *testing.T) {
	meter := &fakeMeter{primary: 5, sec: Secondary{ID: 5}, lastFCB: -1, telegrams: [][]byte{append(append([]byte(nil), volumeRecord...), volumeRecord...)}}
	b := &memBus{meters: []*fakeMeter{meter}, split: true}
	l := newMemLine(2400, b.respond)
	l.arrive = true
	m := NewMaster(l, Options{}, nil)
	ts, err := m.ReadPrimary(context.Background(), 5)
	if err != nil || len(ts) != 1 {
		t.Fatalf("%d telegrams, %v", len(ts), err)
	}
	if n, frame := len(l.budgets), len(ts[0].Raw); n > 6 {
		t.Fatalf("%d reads for a %d-byte answer", n, frame)
	}
}

// FuzzMasterEndless: after whatever answers a request, the line repeats
// bytes for ever instead of falling silent (a babbler, a stuck
// transmitter, a converter streaming noise). Every transaction of the
// master, a read, a selection and the drain after a failure, ends: with a
// telegram of the polled meter, a meter error or line noise, having read
// at most its byte cap and holding at most a frame and a read; and once
// the line is quiet the next read works.
func FuzzMasterEndless(f *testing.F) {
	long, _ := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CRspUd), Address: 5, CI: 0x72, Data: append(make([]byte, 12), volumeRecord...)})
	f.Add([]byte{}, long)
	f.Add([]byte{}, []byte{0xE5})
	f.Add([]byte{0x68}, []byte{0x68, 0xFF, 0xFF, 0x68})
	f.Add(bytes.Repeat([]byte{0x68}, 5000), []byte{0x00})
	f.Add(long[:10], []byte{0x10, 0x5B, 0x05, 0x60, 0x16})
	f.Add(long, bytes.Repeat([]byte{0xAA, 0x55}, 300))
	f.Fuzz(func(t *testing.T, answer, endless []byte) {
		if len(endless) == 0 {
			endless = []byte{0}
		}
		meter := &fakeMeter{primary: 5, sec: Secondary{ID: 5}, lastFCB: -1, telegrams: [][]byte{volumeRecord}}
		fuzzed := true
		l := newMemLine(2400, func(req []byte) []event {
			if fuzzed {
				fuzzed = false
				return answerEvents(answer, nil)
			}
			f, _, err := pmbus.Decode(req)
			if err != nil {
				return nil
			}
			return []event{got(busAnswer([]*fakeMeter{meter}, f, false)...)}
		})
		l.endless = endless
		m := NewMaster(l, Options{}, nil)
		ctx := context.Background()
		perTx := 2*5 + 2*maxFrame + noiseMargin + 64 + 2*maxFrame + noiseMargin + 64 // a transaction and the drain before it, a read over each
		ts, err := m.ReadPrimary(ctx, 5)
		if c := link.Classify(err); c != link.FaultNone && c != link.FaultMeter && c != link.FaultLine {
			t.Fatalf("read: %v", err)
		}
		for _, tg := range ts {
			if tg.Address != 5 {
				t.Fatalf("telegram from %d accepted", tg.Address)
			}
		}
		if max := (m.opt.MaxTelegrams + 1) * perTx; l.read > max {
			t.Fatalf("read %d endless bytes, at most %d", l.read, max)
		}
		l.read = 0
		if _, err := m.Select(ctx, AllWild()); link.Classify(err) == link.FaultStopped {
			t.Fatalf("select: %v", err)
		}
		if l.read > perTx {
			t.Fatalf("select read %d endless bytes, at most %d", l.read, perTx)
		}
		if cap(m.buf) > 4096 {
			t.Fatalf("holds %d bytes", cap(m.buf))
		}
		l.endless, l.pending = nil, nil
		m.drain = false
		if ts, err := m.ReadPrimary(ctx, 5); err != nil || len(ts) != 1 {
			t.Fatalf("clean read after it: %d telegrams, %v", len(ts), err)
		}
	})
}
