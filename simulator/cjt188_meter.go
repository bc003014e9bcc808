package simulator

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"tidegate/protocol/cjt188"
	"tidegate/reading"
	"tidegate/simulator/water"
)

// ErrCJTMeter is returned for a CJ/T 188 meter configuration that cannot be played.
var ErrCJTMeter = errors.New("bad CJ/T 188 meter")

// CJTMeterConfig describes one simulated CJ/T 188 water meter.
type CJTMeterConfig struct {
	ID      string
	Address cjt188.Address
	Type    cjt188.MeterType // default 10 (cold water)
	// DIOrder is the order the meter understands requests in; a request
	// in the other order is not for it (silence), as with real meters
	// that compare the DI bytes as they come. ReplyOrder is the order it
	// answers in (default DIOrder).
	DIOrder    cjt188.DIOrder
	ReplyOrder *cjt188.DIOrder
	Clock      cjt188.ClockOrder // seconds-first (default) or century-first
	NoClock    bool              // sends seven zero bytes for the clock
	Preamble   int               // FE bytes before each reply (0–4)
	Layout     cjt188.Layout     // status bits (zero: the common layout)
	// Total is "net" (default: reverse netted out of the one total, so
	// self-rotation shows as steps back) or "forward" (reverse flow not
	// registered at all).
	Total string
	// SettlementDay is the day of the month the meter freezes its
	// settlement-day volume at 00:00 of its own clock; 0 freezes every
	// midnight (a simulated month is long).
	SettlementDay int
	// Valve: the meter has a shut-off valve that A017 drives.
	Valve bool
	// ClockOffset is how far the meter clock is off at start (until A015).
	ClockOffset time.Duration
}

// CJTMeter is a CJ/T 188 slave: 901F current data, 907F clock, D120–D12B
// settlement history, D300–D3FF daily freezes (cjt188_memory.go), 810A
// read address (broadcast too), A015 set clock, A017 valve, A018 write
// address. Values come from the water model.
type CJTMeter struct {
	cfg   CJTMeterConfig
	state SnapshotFunc
	valve func(now time.Time, closed bool)

	mu         sync.Mutex
	address    cjt188.Address
	clockShift time.Duration // set by A015: the meter clock minus the model's
	closed     bool
	settled    float64   // volume at the last settlement
	settledAt  time.Time // meter-clock date of the last settlement
	history    []float64 // settlement volumes, newest first: D120 is [0], the one 901F carries
	seen       bool
	memory     dailyMemory
	clockSets  int // A015 writes accepted
}

// NewCJTMeter makes a slave; valve (may be nil without a valve) opens or
// closes the water model's shut-off valve.
func NewCJTMeter(cfg CJTMeterConfig, state SnapshotFunc, valve func(time.Time, bool)) (*CJTMeter, error) {
	if cfg.Type == 0 {
		cfg.Type = cjt188.TypeColdWater
	}
	if cfg.Clock == cjt188.ClockAuto {
		cfg.Clock = cjt188.ClockSecondsFirst
	}
	if cfg.ReplyOrder == nil {
		o := cfg.DIOrder
		cfg.ReplyOrder = &o
	}
	switch {
	case !cfg.Address.Valid() || cfg.Address.IsBroadcast():
		return nil, fmt.Errorf("%w: address %s is not 14 digits", ErrCJTMeter, cfg.Address)
	case cfg.Preamble < 0 || cfg.Preamble > cjt188.MaxPreamble:
		return nil, fmt.Errorf("%w: preamble %d, want 0..%d", ErrCJTMeter, cfg.Preamble, cjt188.MaxPreamble)
	case cfg.Total != "" && cfg.Total != "net" && cfg.Total != "forward":
		return nil, fmt.Errorf("%w: total %q, want net or forward", ErrCJTMeter, cfg.Total)
	case cfg.SettlementDay < 0 || cfg.SettlementDay > 28:
		return nil, fmt.Errorf("%w: settlement_day %d, want 1..28 (0: every midnight)", ErrCJTMeter, cfg.SettlementDay)
	}
	if err := cfg.Layout.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCJTMeter, err)
	}
	return &CJTMeter{cfg: cfg, state: state, valve: valve, address: cfg.Address, clockShift: cfg.ClockOffset}, nil
}

// Address is the meter's address, which A018 can change.
func (m *CJTMeter) Address() cjt188.Address {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.address
}

// ValveClosed reports the valve's state.
func (m *CJTMeter) ValveClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Respond answers one request; nil is silence (not addressed, not
// understood, a reply from another meter, noise).
func (m *CJTMeter) Respond(req []byte, now time.Time) []byte {
	msg, _, err := cjt188.DecodeMessage(req)
	if err != nil || msg.Control.IsReply() || msg.Order != m.cfg.DIOrder {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if msg.Type != m.cfg.Type && msg.Type != cjt188.TypeAny {
		return nil
	}
	if msg.Address != m.address && !msg.Address.IsBroadcast() {
		return nil
	}
	m.freezeDays(now) // before anything advances the model past a midnight
	var body []byte
	switch {
	case msg.Control == cjt188.FuncReadAddress && msg.DI == cjt188.DIAddress:
	case msg.Control == cjt188.FuncReadData && msg.DI == cjt188.DICurrent:
		s := m.observe(now)
		c := cjt188.Current{
			Volume:     cjt188.Quantity{Value: m.total(s), Unit: cjt188.UnitM3},
			Settlement: cjt188.Quantity{Value: m.settled, Unit: cjt188.UnitM3},
			Clock:      m.clock(s),
			Status:     m.status(s),
		}
		if body, err = cjt188.AppendCurrent(nil, c, m.cfg.Clock); err != nil {
			return nil
		}
	case msg.Control == cjt188.FuncReadData && msg.DI == cjt188.DIClock:
		s := m.observe(now)
		if body, err = cjt188.AppendClock(nil, m.clock(s), m.cfg.Clock); err != nil {
			return nil
		}
	case msg.Control == cjt188.FuncReadData && msg.DI >= cjt188.DIHistory1 && msg.DI <= cjt188.DIHistory12:
		m.observe(now)
		i := int(msg.DI - cjt188.DIHistory1)
		v := 0.0
		if i < len(m.history) {
			v = m.history[i]
		}
		body = cjt188.AppendQuantity(nil, cjt188.Quantity{Value: v, Unit: cjt188.UnitM3})
	case msg.Control == cjt188.FuncReadData && msg.DI == cjt188.DISettlementDay:
		if m.cfg.SettlementDay == 0 {
			return m.errorReply(msg, now) // it settles every midnight: no day of the month
		}
		body = []byte{byte(m.cfg.SettlementDay/10)<<4 | byte(m.cfg.SettlementDay%10)}
	case msg.Control == cjt188.FuncReadData && msg.DI.IsFreeze():
		if body, err = m.freezeReply(msg.DI); err != nil {
			return nil
		}
	case msg.Control == cjt188.FuncWriteData && msg.DI == cjt188.DIWriteClock && !msg.Address.IsBroadcast():
		w, err := cjt188.ParseWrite(msg, m.cfg.Clock)
		if err != nil {
			return m.errorReply(msg, now)
		}
		s := m.state(now)
		set := time.Date(w.Clock.Year, time.Month(w.Clock.Month), w.Clock.Day, w.Clock.Hour, w.Clock.Minute, w.Clock.Second, 0, s.MeterClock.Location())
		m.clockShift = set.Sub(s.MeterClock)
		m.clockSets++
	case msg.Control == cjt188.FuncWriteData && msg.DI == cjt188.DIValve && !msg.Address.IsBroadcast():
		w, err := cjt188.ParseWrite(msg, m.cfg.Clock)
		if err != nil || !m.cfg.Valve || (w.Action != cjt188.ValveOpen && w.Action != cjt188.ValveClose) {
			return m.errorReply(msg, now)
		}
		m.closed = w.Action == cjt188.ValveClose
		if m.valve != nil {
			m.valve(now, m.closed)
		}
		st := m.status(m.state(now))
		body = st[:]
	case msg.Control == cjt188.FuncWriteAddress && msg.DI == cjt188.DIWriteAddress:
		w, err := cjt188.ParseWrite(msg, m.cfg.Clock)
		if err != nil {
			return m.errorReply(msg, now)
		}
		m.address = w.Address
	default:
		return nil
	}
	reply := cjt188.Request(m.cfg.Type, m.address, msg.Control.Reply(), msg.DI, *m.cfg.ReplyOrder, msg.SER, body)
	reply.Preamble = m.cfg.Preamble
	out, err := cjt188.Encode(reply)
	if err != nil {
		return nil
	}
	return out
}

// errorReply is the D6 answer: DI, SER and the status word.
func (m *CJTMeter) errorReply(req cjt188.Message, now time.Time) []byte {
	st := m.status(m.state(now))
	f := cjt188.Request(m.cfg.Type, m.address, req.Control.Reply()|cjt188.CtrlError, req.DI, *m.cfg.ReplyOrder, req.SER, st[:])
	f.Preamble = m.cfg.Preamble
	out, _ := cjt188.Encode(f)
	return out
}

// total is the one cumulative volume the meter shows, m3 with two decimals.
func (m *CJTMeter) total(s water.Snapshot) float64 {
	v := s.Forward
	if m.cfg.Total != "forward" {
		v = s.Forward - s.Reverse
	}
	return math.Floor(math.Max(v, 0)*100+1e-6) / 100
}

func (m *CJTMeter) meterTime(s water.Snapshot) time.Time {
	t := s.MeterClock
	if t.IsZero() {
		t = s.Time
	}
	return t.Add(m.clockShift)
}

func (m *CJTMeter) clock(s water.Snapshot) cjt188.Clock {
	if m.cfg.NoClock {
		return cjt188.Clock{}
	}
	t := m.meterTime(s)
	return cjt188.Clock{Year: t.Year(), Month: int(t.Month()), Day: t.Day(), Hour: t.Hour(), Minute: t.Minute(), Second: t.Second()}
}

func (m *CJTMeter) status(s water.Snapshot) cjt188.Status {
	v := cjt188.ValveStateOpen
	if m.closed {
		v = cjt188.ValveStateClosed
	}
	return cjt188.MakeStatus(m.cfg.Layout, v, s.Status&reading.StatusLowBattery != 0, [2]byte{0, 0})
}

// observe takes a snapshot and keeps the settlement volumes: when the
// meter's clock has passed a settlement time since the last request, the
// total of this request is what the meter froze (a meter asked rarely
// freezes late; the simulator cannot go back in time).
func (m *CJTMeter) observe(now time.Time) water.Snapshot {
	s := m.state(now)
	t := m.meterTime(s)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	if m.cfg.SettlementDay > 0 {
		day = time.Date(t.Year(), t.Month(), m.cfg.SettlementDay, 0, 0, 0, 0, t.Location())
		if day.After(t) {
			day = day.AddDate(0, -1, 0)
		}
	}
	if !m.seen || day.After(m.settledAt) {
		m.seen = true
		m.settled, m.settledAt = m.total(s), day
		m.history = append([]float64{m.settled}, m.history...)[:min(len(m.history)+1, 12)]
	}
	return s
}
