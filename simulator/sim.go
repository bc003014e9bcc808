package simulator

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/configs"
	"tidegate/protocol/modbus"
	"tidegate/simulator/water"
)

// Sim is a running simulator: its buses and meters.
type Sim struct {
	cfg    *Config
	t0     time.Time // real time at start
	start  time.Time // simulation time at start
	buses  []*Bus
	meters map[string]*simMeter
	cancel context.CancelFunc
	frozen atomic.Int64 // real nanoseconds elapsed at Freeze, plus one; 0 while running
}

// simMeter is one meter's water model behind a lock: several endpoints of a
// bus (pty and TCP) may ask at once.
type simMeter struct {
	ID      string
	Bus     string
	Address int
	clock   func() time.Time // its bus's simulation time
	mu      sync.Mutex
	model   *water.Meter
	resp    Responder
}

func (m *simMeter) snapshot(now time.Time) water.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.model.Now()) {
		m.model.Advance(now)
	}
	return m.model.Snapshot()
}

// setValve opens or closes the water model's valve at simulation time now.
func (m *simMeter) setValve(now time.Time, closed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.model.Now()) {
		m.model.Advance(now)
	}
	m.model.SetValve(closed)
}

// PortInfo says where a bus can be reached; it is what `metersim --ports` writes.
type PortInfo struct {
	Protocol string      `json:"protocol"`
	Device   string      `json:"device,omitempty"`
	TCP      string      `json:"tcp,omitempty"`
	Baud     int         `json:"baud"`
	Parity   string      `json:"parity"`
	Meters   []PortMeter `json:"meters"`
}

// PortMeter is one meter of a bus in the ports file: its id and the
// address a master reaches it at (Modbus unit id or M-Bus primary address
// in decimal; a CJ/T 188 address as its 14 label digits).
type PortMeter struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// Start opens every bus and starts answering. Stop it with Close.
func Start(ctx context.Context, cfg *Config, log *logrus.Entry) (*Sim, error) {
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		log = logrus.NewEntry(l)
	}
	s := &Sim{cfg: cfg, t0: time.Now(), start: cfg.Start, meters: map[string]*simMeter{}}
	if s.start.IsZero() {
		s.start = s.t0
	}
	var profiles map[string]*modbus.Profile
	for _, bc := range cfg.Buses {
		if bc.Protocol == ProtocolModbus && profiles == nil {
			var err error
			// The built-in profiles, as tidegate has them, and the
			// config's folder over them.
			var dirs []string
			if cfg.Profiles != "" {
				dirs = append(dirs, cfg.Profiles)
			}
			if profiles, err = configs.Profiles(dirs...); err != nil {
				return nil, err
			}
		}
	}
	ctx, s.cancel = context.WithCancel(ctx)
	for _, bc := range cfg.Buses {
		b := &Bus{
			Name: bc.Name, Protocol: bc.Protocol, Turnaround: time.Duration(bc.Turnaround), Framing: bc.Framing,
			Line:  Line{Baud: bc.Baud, DataBits: bc.DataBits, Parity: bc.Parity, StopBits: bc.StopBits},
			clock: s.clock(bc.Speed), faults: bc.Faults, log: log.WithField("bus", bc.Name),
			rng: rand.New(rand.NewPCG(uint64(cfg.Seed), hash(bc.Name))),
		}
		for _, mc := range bc.Meters {
			if mc.speaks(bc.Protocol) != bc.Protocol {
				b.mixed = true
			}
			m, err := s.newMeter(bc, mc, profiles)
			if err != nil {
				s.Close()
				return nil, err
			}
			b.responders = append(b.responders, m.resp)
		}
		if err := b.open(*bc.PTY, bc.TCP); err != nil {
			s.Close()
			return nil, fmt.Errorf("bus %s: %w", bc.Name, err)
		}
		s.buses = append(s.buses, b)
		b.start(ctx)
	}
	return s, nil
}

func (s *Sim) newMeter(bc BusConfig, mc MeterConfig, profiles map[string]*modbus.Profile) (*simMeter, error) {
	seed := int64(hash(mc.ID)) ^ s.cfg.Seed
	model, err := water.New(mc.Water, seed, s.start)
	if err != nil {
		return nil, fmt.Errorf("meter %s: %w", mc.ID, err)
	}
	m := &simMeter{ID: mc.ID, Bus: bc.Name, Address: mc.Address, model: model, clock: s.clock(bc.Speed)}
	var inner Responder
	switch mc.speaks(bc.Protocol) {
	case ProtocolModbus:
		p := profiles[mc.Profile]
		if p == nil {
			where := "the built-in profiles"
			if s.cfg.Profiles != "" {
				where += " or " + s.cfg.Profiles
			}
			return nil, fmt.Errorf("meter %s: profile %q not found in %s", mc.ID, mc.Profile, where)
		}
		inner = NewModbusMeter(mc.ID, byte(mc.Address), p, m.snapshot, s.start)
	case ProtocolMBus:
		if inner, err = newMBusMeter(mc, m.snapshot, s.start); err != nil {
			return nil, fmt.Errorf("meter %s: %w", mc.ID, err)
		}
	case ProtocolCJT188:
		cc, err := mc.cjtConfig()
		if err != nil {
			return nil, fmt.Errorf("meter %s: %w", mc.ID, err)
		}
		if inner, err = NewCJTMeter(cc, m.snapshot, m.setValve); err != nil {
			return nil, fmt.Errorf("meter %s: %w", mc.ID, err)
		}
	}
	m.resp = &faulty{inner: inner, f: mc.Faults, protocol: bc.Protocol, start: s.start,
		rng: rand.New(rand.NewPCG(uint64(seed), 7))}
	s.meters[mc.ID] = m
	return m, nil
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Now is the simulation time: the start plus real time elapsed × speed.
// A bus with a speed of its own runs on its own clock (Sim.clock).
func (s *Sim) Now() time.Time { return s.clock(0)() }

// clock is the simulation time at speed (0: the config's): every clock
// starts at the same simulated instant.
func (s *Sim) clock(speed float64) func() time.Time {
	if speed == 0 {
		speed = s.cfg.Speed
	}
	return func() time.Time {
		el := time.Since(s.t0)
		if f := s.frozen.Load(); f != 0 {
			el = time.Duration(f - 1)
		}
		return s.start.Add(time.Duration(float64(el) * speed))
	}
}

// Freeze stops the simulation clocks (the buses keep answering), so a test
// can compare what a master reads with the meters' state exactly.
func (s *Sim) Freeze() { s.frozen.Store(int64(time.Since(s.t0)) + 1) }

// Ports says where each bus can be reached.
func (s *Sim) Ports() map[string]PortInfo {
	out := map[string]PortInfo{}
	for i, b := range s.buses {
		pi := PortInfo{Protocol: b.Protocol, Device: b.Device(), TCP: b.TCPAddr(), Baud: b.Line.Baud, Parity: b.Line.Parity}
		for _, mc := range s.cfg.Buses[i].Meters {
			addr := strconv.Itoa(mc.Address)
			if mc.speaks(b.Protocol) == ProtocolCJT188 {
				addr = mc.addressText
			}
			pi.Meters = append(pi.Meters, PortMeter{ID: mc.ID, Address: addr})
		}
		out[b.Name] = pi
	}
	return out
}

// Bus returns a bus by name, nil if there is none.
func (s *Sim) Bus(name string) *Bus {
	for _, b := range s.buses {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Snapshot is a meter's state at the current simulation time.
func (s *Sim) Snapshot(meterID string) (water.Snapshot, bool) {
	m := s.meters[meterID]
	if m == nil {
		return water.Snapshot{}, false
	}
	return m.snapshot(m.clock()), true
}

// Truth is a meter's ground truth at the current simulation time.
func (s *Sim) Truth(meterID string) (water.Truth, bool) {
	m := s.meters[meterID]
	if m == nil {
		return water.Truth{}, false
	}
	m.snapshot(m.clock())
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.model.Truth(), true
}

// Close stops every bus and closes its pty and listener.
func (s *Sim) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	for _, b := range s.buses {
		b.close()
	}
}
