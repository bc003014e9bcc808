package simulator

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"time"

	"tidegate/protocol/cjt188"
	"tidegate/protocol/modbus"
	"tidegate/simulator/water"
)

// MeterFaults are a meter's misbehaviours, each by probability per request
// it would answer, or by schedule. The zero value is a healthy meter.
type MeterFaults struct {
	NoAnswer     float64          `yaml:"no_answer"`     // stays silent
	Late         float64          `yaml:"late"`          // answers after LateBy (past the master's timeout)
	LateBy       water.Duration   `yaml:"late_by"`       // default 1.5s
	CRC          float64          `yaml:"crc"`           // last byte corrupted: CRC/checksum error
	Truncated    float64          `yaml:"truncated"`     // only the first half of the frame
	WrongAddress float64          `yaml:"wrong_address"` // answers with another slave address
	Exception    float64          `yaml:"exception"`     // Modbus: exception 04 (slave device failure)
	Dead         bool             `yaml:"dead"`          // never answers
	Silent       []SilentInterval `yaml:"silent"`        // stops answering for a while
	Trailing     float64          `yaml:"trailing"`      // CJ/T 188: two bytes after the end byte (a radio module's RSSI)
	Garbage      float64          `yaml:"garbage"`       // CJ/T 188: stray bytes (FF 00 68) before the frame
	// Stuck: its transmitter sticks after an answer and keeps sending that
	// answer back to back for StuckFor (default 10s), the line jammed.
	Stuck    float64        `yaml:"stuck"`
	StuckFor water.Duration `yaml:"stuck_for"`
}

// SilentInterval is a span of simulation time, from the simulation's start,
// during which a meter does not answer.
type SilentInterval struct {
	From water.Duration `yaml:"from"`
	For  water.Duration `yaml:"for"`
}

// BusFaults are misbehaviours of the line itself.
type BusFaults struct {
	NoiseEvery    water.Duration `yaml:"noise_every"` // mean time between bursts of noise bytes on the idle line
	CollisionProb float64        `yaml:"collision"`   // a reply garbled as if another device talked over it
	Babble        Babble         `yaml:"babble"`      // a rogue device streaming bytes at a set rate
}

// faulty wraps a meter with its faults.
type faulty struct {
	inner    Responder
	f        MeterFaults
	protocol string
	start    time.Time
	mu       sync.Mutex
	rng      *rand.Rand
	// stuckFor is how long the answer just given keeps being sent (Stuck),
	// 0 for a normal answer. Read by the bus under its lock right after
	// Respond.
	stuckFor time.Duration
}

// stuck is how long the last answer keeps being repeated.
func (m *faulty) stuck() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stuckFor
}

func (m *faulty) Respond(req []byte, now time.Time) []byte {
	out, _ := m.RespondDelayed(req, now)
	return out
}

func (m *faulty) RespondDelayed(req []byte, now time.Time) ([]byte, time.Duration) {
	out := m.inner.Respond(req, now)
	if out == nil {
		return nil, 0
	}
	if m.f.Dead {
		return nil, 0
	}
	since := now.Sub(m.start)
	for _, s := range m.f.Silent {
		if since >= time.Duration(s.From) && since < time.Duration(s.From)+time.Duration(s.For) {
			return nil, 0
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	roll := func(p float64) bool { return p > 0 && m.rng.Float64() < p }
	m.stuckFor = 0
	if roll(m.f.Stuck) {
		m.stuckFor = time.Duration(m.f.StuckFor)
		if m.stuckFor <= 0 {
			m.stuckFor = 10 * time.Second
		}
	}
	switch {
	case roll(m.f.NoAnswer):
		return nil, 0
	case roll(m.f.Late):
		d := time.Duration(m.f.LateBy)
		if d == 0 {
			d = 1500 * time.Millisecond
		}
		return out, d
	case roll(m.f.CRC):
		out = append([]byte(nil), out...)
		out[max(0, len(out)-2)] ^= 0x5A // a lone E5 becomes another byte
	case roll(m.f.Truncated):
		out = out[:max(1, len(out)/2)]
	case roll(m.f.WrongAddress):
		out = wrongAddress(m.protocol, out)
	case roll(m.f.Trailing) && m.protocol == ProtocolCJT188:
		out = append(append([]byte(nil), out...), 0xC4, 0x3A)
	case roll(m.f.Garbage) && m.protocol == ProtocolCJT188:
		out = append([]byte{0xFF, 0x00, 0x68}, out...)
	case roll(m.f.Exception) && m.protocol == ProtocolModbus && len(req) > 1:
		out = modbus.ExceptionResponse(req[0], req[1], modbus.ExceptionSlaveDeviceFailure)
	}
	return out, 0
}

// wrongAddress rewrites a reply's address field with a valid checksum, as a
// misconfigured meter sharing the bus would answer.
func wrongAddress(protocol string, f []byte) []byte {
	out := append([]byte(nil), f...)
	if protocol == ProtocolModbus && len(out) >= 4 {
		out[0]++
		return modbus.AppendCRC(out[:len(out)-2])
	}
	if protocol == ProtocolCJT188 {
		i := bytes.IndexByte(out, 0x68)
		if i < 0 || len(out) < i+13 {
			return out
		}
		out[i+2] ^= 0x01 // A0's low digit: 4 becomes 5, a neighbour's address
		out[len(out)-2] = cjt188.Checksum(out[i : len(out)-2])
		return out
	}
	if len(out) > 7 && out[0] == 0x68 {
		out[5]++
		var cs byte
		for _, c := range out[4 : len(out)-2] {
			cs += c
		}
		out[len(out)-2] = cs
	}
	return out
}
