package drivers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
	"tidegate/reading"
)

// offlineAfter consecutive failed polls mark a meter offline (with an event).
const offlineAfter = 3

// A failing meter is retried after BusConfig.Backoff (default 10 s),
// doubling up to maxBackoff (never sooner than its own interval), so a dead
// meter costs at most one timeout per backoff period whatever its interval.
const maxBackoff = 30 * time.Minute

// Bus polls the meters of one line.
type Bus struct {
	cfg      BusConfig
	sink     Sink
	log      *logrus.Entry
	profiles map[string]*pmodbus.Profile
	open     func() (poller, error)
	clk      clock // nil: the real clock

	reqs chan readReq

	mu      sync.Mutex
	meters  []*meterState
	p       poller
	stats   BusStats
	started time.Time
}

// BusStats are a bus's counters for status and metrics.
type BusStats struct {
	Counters
	PollsOK     int64
	PollsFailed int64
	Reopens     int64
	Open        bool
	LastError   string
	Efficiency  float64 // share of the time since start the line was in a transaction
}

// MeterStatus is one meter's state on its bus.
type MeterStatus struct {
	ID       string
	Online   bool
	Failures int
	Next     time.Time
	Last     reading.Reading
}

type meterState struct {
	cfg         MeterConfig
	next        time.Time
	billingNext time.Time
	fails       int
	offline     bool
	last        reading.Reading
}

type readReq struct {
	meter string
	valve *valveOp // a valve command instead of a read
	reply chan readResult
}

type readResult struct {
	r     reading.Reading
	valve ValveResult
	err   error
}

// NewBus checks the configuration; Run starts polling.
func NewBus(cfg BusConfig, meters []MeterConfig, profiles map[string]*pmodbus.Profile, sink Sink, log *logrus.Entry) (*Bus, error) {
	return newBus(cfg, meters, profiles, sink, log, nil)
}

// newBus is NewBus on a given clock (nil: the real one).
func newBus(cfg BusConfig, meters []MeterConfig, profiles map[string]*pmodbus.Profile, sink Sink, log *logrus.Entry, clk clock) (*Bus, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	log = log.WithField("bus", cfg.Name)
	// Said once: the line is reopened after every failure, the cause stays.
	var lockFile sync.Once
	cfg.Link.LockFileError = func(err error) {
		lockFile.Do(func() {
			log.WithError(err).Warn("serial port lock file not written: the port is held (flock), but minicom and picocom will not see it")
		})
	}
	b := &Bus{cfg: cfg, sink: sink, log: log, profiles: profiles, clk: clk, reqs: make(chan readReq)}
	switch cfg.Protocol {
	case ProtoModbus, ProtoModbusTCP:
		for _, m := range meters {
			if profiles[m.Profile] == nil {
				return nil, fmt.Errorf("bus %s: meter %s: unknown profile %q", cfg.Name, m.ID, m.Profile)
			}
		}
		b.open = func() (poller, error) { return openModbus(cfg, profiles) }
	case ProtoMBus:
		b.open = func() (poller, error) { return openMBus(cfg) }
		if mixed, err := mixedMeters(cfg, meters); err != nil {
			return nil, err
		} else if len(mixed) > 0 {
			b.open = func() (poller, error) { return openMixed(cfg, mixed) }
		}
	case ProtoCJT188:
		pms, err := cjtMeters(cfg, meters)
		if err != nil {
			return nil, err
		}
		b.open = func() (poller, error) { return openCJT188(cfg, pms) }
	}
	now := b.now()
	for _, m := range meters {
		if m.Interval <= 0 {
			m.Interval = time.Minute
		}
		ms := &meterState{cfg: m}
		// Jitter: a meter's first poll lands at a fixed but meter-specific
		// point in its interval, so a hundred concentrators (and the meters
		// of one bus) don't all ask at the same instant.
		h := fnv.New64a()
		h.Write([]byte(cfg.Name + "/" + m.ID))
		ms.next = now.Add(time.Duration(rand.New(rand.NewPCG(h.Sum64(), 1)).Int64N(int64(m.Interval)/4 + 1)))
		ms.billingNext = nextBilling(m.Billing, now)
		b.meters = append(b.meters, ms)
	}
	return b, nil
}

// nextBilling is the next local HH:MM after now, zero when there is none.
func nextBilling(hhmm string, now time.Time) time.Time {
	if hhmm == "" {
		return time.Time{}
	}
	t, err := time.ParseInLocation("15:04", hhmm, now.Location())
	if err != nil {
		return time.Time{}
	}
	d := time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), 0, 0, now.Location())
	if !d.After(now) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

func (b *Bus) clock() clock {
	if b.clk == nil {
		return realClock{}
	}
	return b.clk
}

func (b *Bus) now() time.Time { return b.clock().Now() }

// Name is the bus's configured name.
func (b *Bus) Name() string { return b.cfg.Name }

// Run polls until ctx ends. A line that fails (device unplugged, converter
// gone) is closed and reopened with backoff; Run returns only with ctx.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	b.started = b.now()
	b.mu.Unlock()
	backoff := 500 * time.Millisecond
	reopen := 250 * time.Millisecond // after a line failure (doubled first): 0.5 s, more while it keeps failing soon after opening
	for ctx.Err() == nil {
		p, err := b.open()
		if err != nil {
			b.setErr(err)
			b.log.WithError(err).WithField("retry_in", backoff).Warn("bus cannot be opened")
			if !b.sleep(ctx, backoff) {
				break
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		b.mu.Lock()
		b.p, b.stats.Open, b.stats.LastError = p, true, ""
		b.mu.Unlock()
		b.log.Info("bus open")
		opened := b.now()
		err = b.loop(ctx, p)
		b.mu.Lock()
		b.foldCounters(p)
		b.p, b.stats.Open = nil, false
		b.mu.Unlock()
		p.close()
		if ctx.Err() != nil {
			break
		}
		b.setErr(err)
		b.mu.Lock()
		b.stats.Reopens++
		b.mu.Unlock()
		b.log.WithError(err).Warn("bus line failed; reopening")
		b.sink.Event(reading.Event{Time: b.now(), Type: "bus_error", Message: err.Error(), Attrs: map[string]string{"bus": b.cfg.Name}})
		backoff = 500 * time.Millisecond
		if b.now().Sub(opened) < time.Minute {
			reopen = min(reopen*2, 30*time.Second)
		} else {
			reopen = 500 * time.Millisecond
		}
		if !b.sleep(ctx, reopen) {
			break
		}
	}
	b.drainRequests()
	return nil
}

// foldCounters keeps a closed poller's counters. Caller holds b.mu.
func (b *Bus) foldCounters(p poller) {
	c := p.counters()
	b.stats.Requests += c.Requests
	b.stats.Timeouts += c.Timeouts
	b.stats.CRCErrors += c.CRCErrors
	b.stats.Exceptions += c.Exceptions
	b.stats.Stray += c.Stray
	b.stats.Stale += c.Stale
	b.stats.Collisions += c.Collisions
	b.stats.BusyNanos += c.BusyNanos
}

func (b *Bus) setErr(err error) {
	b.mu.Lock()
	b.stats.LastError = err.Error()
	b.mu.Unlock()
}

func (b *Bus) drainRequests() {
	for {
		select {
		case r := <-b.reqs:
			r.reply <- readResult{err: errors.New("bus stopped")}
		default:
			return
		}
	}
}

// sleep waits d on the bus's clock; false if ctx ended first.
func (b *Bus) sleep(ctx context.Context, d time.Duration) bool {
	t := b.clock().NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// loop polls meters as they fall due and serves read-now requests between
// polls, until ctx ends or the line fails.
func (b *Bus) loop(ctx context.Context, p poller) error {
	streak := 0     // consecutive failures across the whole bus
	var timer timer // armed once an iteration (the fake clock of the tests counts on it)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		m, due, billing := b.nextDue()
		now := b.now()
		if m == nil {
			due = now.Add(time.Hour)
		}
		if timer == nil {
			timer = b.clock().NewTimer(max(due.Sub(now), 0))
		} else {
			timer.Reset(max(due.Sub(now), 0))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-b.reqs:
			ms := b.meter(req.meter)
			if ms == nil {
				req.reply <- readResult{err: fmt.Errorf("no meter %q on bus %s", req.meter, b.cfg.Name)}
				continue
			}
			if req.valve != nil {
				res, err := b.doValve(ctx, p, ms, *req.valve)
				req.reply <- readResult{valve: res, err: err}
				b.passEvents(p)
				if lineFailed(err) {
					return err
				}
				continue
			}
			r, err := b.pollOnce(ctx, p, ms, true)
			if err == nil {
				b.deliver(ms, r, reading.KindReading)
			}
			b.passEvents(p)
			req.reply <- readResult{r: r, err: err}
			if lineFailed(err) {
				return err
			}
		case <-timer.C():
			if m == nil {
				continue
			}
			kind := reading.KindReading
			if billing {
				kind = reading.KindBilling
			}
			r, err := b.pollOnce(ctx, p, m, false)
			b.schedule(m, due, billing, err)
			b.passEvents(p)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if lineFailed(err) {
					return err
				}
				streak++
				// Every meter silent for a long while: the adapter is
				// probably gone although the kernel still answers.
				if streak >= 4*len(b.meters)+offlineAfter && b.deviceGone() {
					return fmt.Errorf("device %s vanished", b.cfg.Link.Device)
				}
				continue
			}
			streak = 0
			b.deliver(m, r, kind)
			if dp, ok := p.(duePoller); ok && billing {
				if d, ok := dp.due(); ok {
					b.sink.Reading(d, reading.KindBilling) // beside the billing read; not the meter's last reading
				}
			}
		}
	}
}

// passEvents sends what a poller noticed beside its readings (a CJ/T 188
// meter clock drifting away).
func (b *Bus) passEvents(p poller) {
	if ep, ok := p.(eventPoller); ok {
		for _, e := range ep.takeEvents() {
			if e.Attrs == nil {
				e.Attrs = map[string]string{}
			}
			e.Attrs["bus"] = b.cfg.Name
			b.sink.Event(e)
		}
	}
}

func (b *Bus) deviceGone() bool {
	if b.cfg.Link.Device == "" {
		return false
	}
	_, err := os.Stat(b.cfg.Link.Device)
	return err != nil
}

// lineFailed tells errors of the line itself (reopen it) from a meter's
// (timeout, CRC, exception: count, retry, carry on).
func lineFailed(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.EBADF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENODEV) ||
		errors.Is(err, link.ErrFailing))
}

// pollOnce polls a meter with the configured immediate retries.
func (b *Bus) pollOnce(ctx context.Context, p poller, m *meterState, raw bool) (reading.Reading, error) {
	var r reading.Reading
	var err error
	b.mu.Lock()
	retries := b.cfg.Retries
	if m.offline {
		retries = 0 // an offline meter gets one try per backoff period
	}
	b.mu.Unlock()
	for attempt := 0; attempt <= retries; attempt++ {
		r, err = p.poll(ctx, m, raw)
		if err == nil || lineFailed(err) || ctx.Err() != nil {
			break
		}
	}
	b.mu.Lock()
	if err != nil {
		b.stats.PollsFailed++
		b.stats.LastError = err.Error()
	} else {
		b.stats.PollsOK++
	}
	b.mu.Unlock()
	if err != nil && !lineFailed(err) && ctx.Err() == nil {
		b.failed(m, err)
	}
	return r, err
}

// failed records a meter's failed poll: an error reading goes to the sink,
// and after offlineAfter in a row the meter is marked offline with an event.
func (b *Bus) failed(m *meterState, err error) {
	b.mu.Lock()
	m.fails++
	goOffline := m.fails == offlineAfter && !m.offline
	if goOffline {
		m.offline = true
	}
	b.mu.Unlock()
	now := b.now()
	b.sink.Reading(reading.Reading{Meter: m.cfg.ID, Received: now, Quality: reading.QualityError, Error: err.Error()}, reading.KindReading)
	if goOffline {
		b.log.WithFields(logrus.Fields{"meter": m.cfg.ID, "error": err}).Warn("meter offline")
		b.sink.Event(reading.Event{Time: now, Meter: m.cfg.ID, Type: "meter_offline", Message: err.Error(), Attrs: map[string]string{"bus": b.cfg.Name}})
	}
}

func (b *Bus) deliver(m *meterState, r reading.Reading, kind reading.Kind) {
	b.mu.Lock()
	back := m.offline
	m.fails, m.offline, m.last = 0, false, r
	b.mu.Unlock()
	if back {
		b.log.WithField("meter", m.cfg.ID).Info("meter online")
		b.sink.Event(reading.Event{Time: r.Received, Meter: m.cfg.ID, Type: "meter_online", Attrs: map[string]string{"bus": b.cfg.Name}})
	}
	b.sink.Reading(r, kind)
}

// schedule sets a meter's next poll. Missed slots are skipped, never caught
// up in a burst; a failing meter backs off exponentially so a dead one costs
// at most one timeout per backoff period; a failed billing read is retried
// every minute until it succeeds.
func (b *Bus) schedule(m *meterState, due time.Time, billing bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if billing {
		if err == nil {
			m.billingNext = nextBilling(m.cfg.Billing, now)
		} else {
			m.billingNext = now.Add(time.Minute)
		}
		return
	}
	iv := m.cfg.Interval
	if err != nil && m.fails >= 1 {
		back := max(iv, b.cfg.Backoff) << min(m.fails-1, 8)
		m.next = now.Add(min(back, max(maxBackoff, iv)))
		return
	}
	next := due.Add(iv)
	if !next.After(now) {
		next = next.Add((now.Sub(next)/iv + 1) * iv)
	}
	m.next = next
}

// nextDue is the meter to poll next and when; billing says whether it is
// the daily billing read.
func (b *Bus) nextDue() (*meterState, time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var best *meterState
	var at time.Time
	billing := false
	for _, m := range b.meters {
		if best == nil || m.next.Before(at) {
			best, at, billing = m, m.next, false
		}
		if !m.billingNext.IsZero() && m.billingNext.Before(at) {
			best, at, billing = m, m.billingNext, true
		}
	}
	return best, at, billing
}

func (b *Bus) meter(id string) *meterState {
	for _, m := range b.meters {
		if m.cfg.ID == id {
			return m
		}
	}
	return nil
}

// ReadNow polls a meter at once, between scheduled polls, and returns the
// reading with its raw bytes; the reading also goes to the sink.
func (b *Bus) ReadNow(ctx context.Context, meterID string) (reading.Reading, error) {
	req := readReq{meter: meterID, reply: make(chan readResult, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return reading.Reading{}, fmt.Errorf("bus %s is busy or not open: %w", b.cfg.Name, ctx.Err())
	}
	select {
	case res := <-req.reply:
		return res.r, res.err
	case <-ctx.Done():
		return reading.Reading{}, ctx.Err()
	}
}

// Stats returns the bus's counters.
func (b *Bus) Stats() BusStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	if b.p != nil {
		c := b.p.counters()
		s.Requests += c.Requests
		s.Timeouts += c.Timeouts
		s.CRCErrors += c.CRCErrors
		s.Exceptions += c.Exceptions
		s.Stray += c.Stray
		s.Stale += c.Stale
		s.Collisions += c.Collisions
		s.BusyNanos += c.BusyNanos
	}
	if el := b.now().Sub(b.started); el > 0 && !b.started.IsZero() {
		s.Efficiency = float64(s.BusyNanos) / float64(el)
	}
	return s
}

// Meters returns each meter's state.
func (b *Bus) Meters() []MeterStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]MeterStatus, 0, len(b.meters))
	for _, m := range b.meters {
		out = append(out, MeterStatus{ID: m.cfg.ID, Online: !m.offline, Failures: m.fails, Next: m.next, Last: m.last})
	}
	return out
}
