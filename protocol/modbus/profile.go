package modbus

import (
	"fmt"
	"math"
	"sort"

	"tidegate/reading"
)

// Quantities a profile register may carry. The driver maps the canonical ones
// onto reading.Reading; any other name is kept as an extra value.
const (
	QForward     = "forward"     // m3, cumulative
	QReverse     = "reverse"     // m3, cumulative
	QNet         = "net"         // m3, cumulative
	QFlow        = "flow"        // m3/h, signed
	QTemperature = "temperature" // degC
	QBattery     = "battery"     // mV
	QStatus      = "status"      // alarm bits, see Register.Bits
	QSlaveID     = "slave_id"    // writable slave address
)

// Part is one register value; a quantity is the sum of its parts, which is
// how "integer + fraction" totalisers (TUF-2000M: LONG + REAL4) and "m3 + mL"
// pairs (Dynaflox) are described.
type Part struct {
	Address uint16
	Type    Type
	Order   WordOrder
	Scale   Scale
}

// Register is one quantity of a meter.
type Register struct {
	Quantity    string
	Unit        string
	Description string
	Writable    bool
	Parts       []Part
	Bits        map[int]reading.Status // status registers: bit number → status
	Line        int                    // line in the profile file, for messages
	// Min and Max bound what the meter can physically show (nil: no
	// bound); a value outside is a wrong map or a wrong address.
	Min, Max *float64
}

// Profile is a meter model's register map, as plain values; the profile
// files (configs/profiles/*.yaml) are read and checked by package configs.
type Profile struct {
	Name         string
	Model        string
	Source       string // the published document the map was taken from
	Function     byte   // FuncReadHoldingRegisters or FuncReadInputRegisters
	MaxRegisters int    // most registers the device returns in one read
	Registers    []Register
	File         string
}

// Register returns the register for a quantity, or nil.
func (p *Profile) Register(quantity string) *Register {
	for i := range p.Registers {
		if p.Registers[i].Quantity == quantity {
			return &p.Registers[i]
		}
	}
	return nil
}

// Values are a profile's quantities decoded from registers.
type Values struct {
	Numbers map[string]float64 // by quantity, in the canonical unit
	Status  reading.Status
}

// RegisterMap holds register contents by address: what a set of reads returned.
type RegisterMap map[uint16]uint16

// Put stores a block read from start.
func (m RegisterMap) Put(start uint16, regs []uint16) {
	for i, r := range regs {
		m[start+uint16(i)] = r
	}
}

func (m RegisterMap) get(addr uint16, n int) ([]uint16, bool) {
	out := make([]uint16, n)
	for i := range out {
		v, ok := m[addr+uint16(i)]
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// Decode computes every quantity whose registers are all present in m.
// Quantities with missing registers are left out, not zeroed.
func (p *Profile) Decode(m RegisterMap) (Values, error) {
	v := Values{Numbers: make(map[string]float64, len(p.Registers))}
	for _, r := range p.Registers {
		sum, raw, ok := 0.0, uint64(0), true
		for _, pt := range r.Parts {
			regs, present := m.get(pt.Address, pt.Type.Registers())
			if !present {
				ok = false
				break
			}
			x, err := Decode(regs, pt.Type, pt.Order)
			if err != nil {
				return v, fmt.Errorf("%s: %s at %d: %w", p.Name, r.Quantity, pt.Address, err)
			}
			if x >= 0 && x < math.MaxUint64 {
				raw = raw<<(16*pt.Type.Registers()) | uint64(x)
			}
			sum += pt.Scale.Apply(x)
		}
		if !ok {
			continue
		}
		if r.Bits != nil {
			for bit, s := range r.Bits {
				if raw&(1<<bit) != 0 {
					v.Status |= s
				}
			}
		}
		v.Numbers[r.Quantity] = sum
	}
	return v, nil
}

// Encode lays values out as registers, the inverse of Decode; the simulator
// builds its meters' register banks with it. A multi-part quantity puts the
// whole units in every part but the last and the remainder in the last.
func (p *Profile) Encode(v Values) (RegisterMap, error) {
	m := RegisterMap{}
	for _, r := range p.Registers {
		x, have := v.Numbers[r.Quantity]
		if r.Bits != nil {
			var raw uint64
			for bit, s := range r.Bits {
				if v.Status&s != 0 {
					raw |= 1 << bit
				}
			}
			x, have = float64(raw), true
		}
		if !have {
			continue
		}
		rest := x
		for i, pt := range r.Parts {
			rawv := pt.Scale.Invert(rest)
			if i < len(r.Parts)-1 {
				rawv = math.Floor(rawv + 1e-9)
			}
			regs, err := Encode(rawv, pt.Type, pt.Order)
			if err != nil {
				return nil, err
			}
			m.Put(pt.Address, regs)
			rest -= pt.Scale.Apply(rawv)
		}
	}
	return m, nil
}

// Span is one contiguous block of registers to read.
type Span struct {
	Start uint16
	Count uint16
}

// Spans lists the register blocks the profile's quantities occupy, sorted;
// request merging starts from these.
func (p *Profile) Spans() []Span { return p.spans(true) }

// ReadSpans is Spans without the writable settings registers (slave id,
// baud): a poll reads measurements, not configuration.
func (p *Profile) ReadSpans() []Span { return p.spans(false) }

func (p *Profile) spans(withSettings bool) []Span {
	var s []Span
	for _, r := range p.Registers {
		if r.Writable && !withSettings {
			continue
		}
		for _, pt := range r.Parts {
			s = append(s, Span{pt.Address, uint16(pt.Type.Registers())})
		}
	}
	sort.Slice(s, func(i, j int) bool { return s[i].Start < s[j].Start })
	return s
}
