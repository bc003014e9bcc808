package drivers

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"tidegate/reading"
)

// The bus scheduler's logic on a fake clock and a scripted poller: time
// moves only when the test fires the timer the bus waits on, and a poll
// takes the (fake) time the script says, so no result here depends on how
// busy the machine is. The real line is covered by the metersim tests.

// fakeClock's timers fire only through fireNext. The scheduler arms exactly
// one timer (NewTimer or Reset) each time it goes to wait, and armed
// carries that news to the test.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan struct{}
}

type fakeTimer struct {
	clk    *fakeClock
	c      chan time.Time
	at     time.Time
	active bool
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, armed: make(chan struct{}, 1024)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	c.mu.Lock()
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1), at: c.now.Add(d), active: true}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.armed <- struct{}{}
	return t
}

// advance moves the clock without firing anything: a poll's wire time.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.clk.mu.Lock()
	select { // a value not received is stale, as with time.Timer since Go 1.23
	case <-t.c:
	default:
	}
	t.at, t.active = t.clk.now.Add(d), true
	t.clk.mu.Unlock()
	t.clk.armed <- struct{}{}
}

func (t *fakeTimer) Stop() {
	t.clk.mu.Lock()
	t.active = false
	t.clk.mu.Unlock()
}

// runUntil waits for the bus to arm its timer and fires the earliest one,
// moving the clock to its time, until the next would fire after end. The
// one real-time bound is a hang guard, not a deadline of the logic.
func (c *fakeClock) runUntil(t *testing.T, end time.Time) {
	t.Helper()
	for {
		select {
		case <-c.armed:
		case <-time.After(30 * time.Second):
			t.Fatal("the bus never went back to waiting on its clock")
		}
		c.mu.Lock()
		var next *fakeTimer
		for _, tm := range c.timers {
			if tm.active && (next == nil || tm.at.Before(next.at)) {
				next = tm
			}
		}
		if next == nil || next.at.After(end) {
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.active = false
		next.c <- c.now
		c.mu.Unlock()
	}
}

// scriptPoller answers each poll as its script says; it records when each
// poll started on the fake clock.
type scriptPoller struct {
	clk *fakeClock
	// answer returns the poll's error (nil: a good reading) and how long
	// the poll takes; n counts this meter's polls from 0.
	answer func(meter string, n int, at time.Time) (time.Duration, error)

	mu    sync.Mutex
	polls map[string][]time.Time
}

func (p *scriptPoller) poll(_ context.Context, m *meterState, _ bool) (reading.Reading, error) {
	at := p.clk.Now()
	p.mu.Lock()
	if p.polls == nil {
		p.polls = map[string][]time.Time{}
	}
	n := len(p.polls[m.cfg.ID])
	p.polls[m.cfg.ID] = append(p.polls[m.cfg.ID], at)
	p.mu.Unlock()
	var took time.Duration
	var err error
	if p.answer != nil {
		took, err = p.answer(m.cfg.ID, n, at)
	}
	p.clk.advance(took)
	if err != nil {
		return reading.Reading{}, err
	}
	return reading.Reading{Meter: m.cfg.ID, Received: p.clk.Now(), Has: reading.HasForward, Forward: float64(n), Quality: reading.QualityGood}, nil
}

func (p *scriptPoller) counters() Counters { return Counters{} }
func (p *scriptPoller) close() error       { return nil }

func (p *scriptPoller) times(id string) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.polls[id]...)
}

// kindSink records readings with their kind.
type kindSink struct {
	mu       sync.Mutex
	readings []kindReading
	events   []reading.Event
}

type kindReading struct {
	r    reading.Reading
	kind reading.Kind
}

func (s *kindSink) Reading(r reading.Reading, k reading.Kind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readings = append(s.readings, kindReading{r, k})
}

func (s *kindSink) Event(e reading.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *kindSink) eventTypes(meter string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		if e.Meter == meter {
			out = append(out, e.Type)
		}
	}
	return out
}

var schedStart = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// startFakeBus runs a bus of meters on clk and p until the test ends.
func startFakeBus(t *testing.T, cfg BusConfig, meters []MeterConfig, clk *fakeClock, p *scriptPoller, sink Sink) (*Bus, func()) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "fake"
	}
	cfg.Protocol = ProtoMBus // no profiles needed; the poller is the script
	b, err := newBus(cfg, meters, nil, sink, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	b.open = func() (poller, error) { return p, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return b, stop
}

// TestSchedulePollsOnTheGrid: each meter is polled every interval, on a
// grid that starts at its jitter offset (within the first quarter of the
// interval), whatever the other meters do.
func TestSchedulePollsOnTheGrid(t *testing.T) {
	clk := newFakeClock(schedStart)
	p := &scriptPoller{clk: clk, answer: func(string, int, time.Time) (time.Duration, error) { return 40 * time.Millisecond, nil }}
	sink := &kindSink{}
	meters := []MeterConfig{{ID: "a", Address: 1, Interval: time.Minute}, {ID: "b", Address: 2, Interval: 5 * time.Minute}, {ID: "c", Address: 3, Interval: 15 * time.Minute}}
	_, stop := startFakeBus(t, BusConfig{}, meters, clk, p, sink)
	clk.runUntil(t, schedStart.Add(time.Hour))
	stop()
	for _, m := range meters {
		ts := p.times(m.ID)
		if want := int(time.Hour / m.Interval); len(ts) != want {
			t.Errorf("%s: %d polls in the hour, want %d", m.ID, len(ts), want)
		}
		if len(ts) == 0 {
			continue
		}
		if off := ts[0].Sub(schedStart); off < 0 || off > m.Interval/4 {
			t.Errorf("%s: first poll %v after start, want within a quarter interval", m.ID, off)
		}
		for i := 1; i < len(ts); i++ {
			if g := ts[i].Sub(ts[i-1]); g != m.Interval {
				t.Errorf("%s: poll %d came %v after the one before, want %v", m.ID, i, g, m.Interval)
				break
			}
		}
	}
}

// TestScheduleBackoffOfflineOnline: a meter that stops answering is retried
// after 1, 2, 4, 8, 16 intervals, then every 30 minutes (maxBackoff); it goes
// offline after offlineAfter failures, with one event, and online again with
// one event on its first good answer, back on its interval. Its neighbour is
// polled on its grid throughout.
func TestScheduleBackoffOfflineOnline(t *testing.T) {
	clk := newFakeClock(schedStart)
	const fails = 8
	p := &scriptPoller{clk: clk, answer: func(id string, n int, _ time.Time) (time.Duration, error) {
		if id == "d" && n < fails {
			return time.Second, errors.New("mbus: no answer") // a timeout's wire time
		}
		return 50 * time.Millisecond, nil
	}}
	sink := &kindSink{}
	meters := []MeterConfig{{ID: "d", Address: 1, Interval: time.Minute}, {ID: "g", Address: 2, Interval: time.Minute}}
	b, stop := startFakeBus(t, BusConfig{Backoff: 10 * time.Second, Retries: -1}, meters, clk, p, sink)
	end := schedStart.Add(4 * time.Hour)
	clk.runUntil(t, end)
	stop()

	ts := p.times("d")
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute,
		time.Minute, time.Minute}
	if len(ts) < len(want)+1 {
		t.Fatalf("dead meter polled %d times in 4 h: %v", len(ts), ts)
	}
	for i, w := range want {
		// A failed poll's next try counts from when it ended (the timeout
		// took a second); a good one's next stays on the grid.
		g := ts[i+1].Sub(ts[i])
		if i < fails {
			g -= time.Second
		}
		if g != w {
			t.Errorf("gap after poll %d: %v, want %v (all: %v)", i, g, w, ts)
			break
		}
	}
	if ev := sink.eventTypes("d"); len(ev) != 2 || ev[0] != "meter_offline" || ev[1] != "meter_online" {
		t.Errorf("events of the failing meter: %v, want one meter_offline then one meter_online", ev)
	}
	sink.mu.Lock()
	bad, offlineAt := 0, time.Time{}
	for _, r := range sink.readings {
		if r.r.Meter == "d" && r.r.Quality == reading.QualityError {
			bad++
		}
	}
	for _, e := range sink.events {
		if e.Meter == "d" && e.Type == "meter_offline" {
			offlineAt = e.Time
		}
	}
	sink.mu.Unlock()
	if bad != fails {
		t.Errorf("%d error readings, want %d", bad, fails)
	}
	if exp := ts[offlineAfter-1].Add(time.Second); !offlineAt.Equal(exp) {
		t.Errorf("offline at %v, want at the end of failure %d (%v)", offlineAt, offlineAfter, exp)
	}
	if st := b.Meters(); st[0].Online != true || st[0].Failures != 0 {
		t.Errorf("after recovering: %+v", st[0])
	}
	// The dead meter's seconds of timeouts never cost its neighbour a slot:
	// its polls stay a minute apart, give or take the one-second timeouts it
	// waited behind.
	g := p.times("g")
	if len(g) < 239 {
		t.Errorf("healthy neighbour polled %d times in 4 h, want about 240", len(g))
	}
	for i := 1; i < len(g); i++ {
		if d := g[i].Sub(g[i-1]); d < time.Minute-2*time.Second || d > time.Minute+2*time.Second {
			t.Errorf("neighbour: poll %d came %v after the one before", i, d)
			break
		}
	}
}

// TestScheduleSkipsMissedSlots: a poll that overruns several intervals
// (a slow line) is followed by the next slot on the meter's grid after it,
// never by a burst of catch-up polls.
func TestScheduleSkipsMissedSlots(t *testing.T) {
	clk := newFakeClock(schedStart)
	p := &scriptPoller{clk: clk, answer: func(_ string, n int, _ time.Time) (time.Duration, error) {
		if n == 2 {
			return 3*time.Minute + 30*time.Second, nil
		}
		return 100 * time.Millisecond, nil
	}}
	_, stop := startFakeBus(t, BusConfig{}, []MeterConfig{{ID: "a", Address: 1, Interval: time.Minute}}, clk, p, &kindSink{})
	clk.runUntil(t, schedStart.Add(20*time.Minute))
	stop()
	ts := p.times("a")
	if len(ts) < 10 {
		t.Fatalf("%d polls", len(ts))
	}
	grid0 := ts[0]
	for i := 1; i < len(ts); i++ {
		if off := ts[i].Sub(grid0) % time.Minute; off != 0 {
			t.Errorf("poll %d off the grid by %v", i, off)
		}
		if d := ts[i].Sub(ts[i-1]); d < time.Minute {
			t.Errorf("poll %d only %v after the one before: a catch-up burst", i, d)
		}
	}
	if d := ts[3].Sub(ts[2]); d != 4*time.Minute {
		t.Errorf("after a 3.5-minute poll the next came %v later, want the next slot (4 min)", d)
	}
}

// TestScheduleBilling: the daily billing read happens at its local time as
// a billing reading; a failed one is retried every minute until it works,
// and the next is due the following day.
func TestScheduleBilling(t *testing.T) {
	start := time.Date(2026, 3, 1, 23, 50, 0, 0, time.UTC)
	clk := newFakeClock(start)
	billAt := time.Date(2026, 3, 2, 0, 5, 0, 0, time.UTC)
	p := &scriptPoller{clk: clk, answer: func(_ string, _ int, at time.Time) (time.Duration, error) {
		if !at.Before(billAt) && at.Before(billAt.Add(2*time.Minute)) {
			return time.Second, errors.New("mbus: no answer")
		}
		return 100 * time.Millisecond, nil
	}}
	sink := &kindSink{}
	b, stop := startFakeBus(t, BusConfig{Retries: -1}, []MeterConfig{{ID: "a", Address: 1, Interval: time.Hour, Billing: "00:05"}}, clk, p, sink)
	clk.runUntil(t, start.Add(2*time.Hour))
	stop()
	var bills []time.Time
	sink.mu.Lock()
	for _, r := range sink.readings {
		if r.kind == reading.KindBilling {
			bills = append(bills, r.r.Received)
		}
	}
	sink.mu.Unlock()
	// Failures at 00:05:00 and 00:06:01 (a minute after each 1-s
	// timeout ended), then the read at 00:07:02 that takes 0.1 s.
	if len(bills) != 1 || !bills[0].Equal(billAt.Add(2*time.Minute+2*time.Second+100*time.Millisecond)) {
		t.Errorf("billing readings at %v, want one at 00:07:02.1", bills)
	}
	if next := b.meters[0].billingNext; !next.Equal(billAt.AddDate(0, 0, 1)) {
		t.Errorf("next billing read at %v, want %v", next, billAt.AddDate(0, 0, 1))
	}
}

// TestScheduleReopensAFailedLine: a line error (EOF: the converter went
// away) closes and reopens the line after a pause, with a bus_error
// event; polling carries on.
func TestScheduleReopensAFailedLine(t *testing.T) {
	clk := newFakeClock(schedStart)
	p := &scriptPoller{clk: clk, answer: func(_ string, n int, _ time.Time) (time.Duration, error) {
		if n == 3 {
			return 0, io.EOF
		}
		return 100 * time.Millisecond, nil
	}}
	sink := &kindSink{}
	b, stop := startFakeBus(t, BusConfig{}, []MeterConfig{{ID: "a", Address: 1, Interval: time.Minute}}, clk, p, sink)
	clk.runUntil(t, schedStart.Add(10*time.Minute))
	stop()
	if st := b.Stats(); st.Reopens != 1 {
		t.Errorf("reopens %d, want 1", st.Reopens)
	}
	sink.mu.Lock()
	busErr := 0
	for _, e := range sink.events {
		if e.Type == "bus_error" {
			busErr++
		}
	}
	sink.mu.Unlock()
	if busErr != 1 {
		t.Errorf("%d bus_error events, want 1", busErr)
	}
	if n := len(p.times("a")); n < 9 {
		t.Errorf("%d polls in 10 min across the reopen", n)
	}
}
