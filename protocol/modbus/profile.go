package modbus

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

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

// canonicalUnit is the unit each canonical quantity must have after scaling,
// so a profile can't silently report litres as cubic metres.
var canonicalUnit = map[string]string{
	QForward: "m3", QReverse: "m3", QNet: "m3", QFlow: "m3/h", QTemperature: "degC", QBattery: "mV",
}

// ErrProfile is wrapped by every profile validation error.
var ErrProfile = errors.New("invalid profile")

// Part is one register value; a quantity is the sum of its parts, which is
// how "integer + fraction" totalisers (TUF-2000M: LONG + REAL4) and "m3 + mL"
// pairs (Dynaflox) are described.
type Part struct {
	Address uint16    `yaml:"address"`
	Type    Type      `yaml:"-"`
	Order   WordOrder `yaml:"-"`
	Scale   Scale     `yaml:"-"`
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

// Profile is a meter model's register map, loaded from configs/profiles/*.yaml.
type Profile struct {
	Name         string
	Model        string
	Source       string // the published document the map was taken from
	Function     byte   // FuncReadHoldingRegisters or FuncReadInputRegisters
	MaxRegisters int    // most registers the device returns in one read
	Registers    []Register
	File         string
}

// yaml shapes: kept apart from the exported types so the exported ones stay
// typed (Type, WordOrder, reading.Status) while the file stays readable.
type profileYAML struct {
	Name         string         `yaml:"name"`
	Model        string         `yaml:"model"`
	Source       string         `yaml:"source"`
	Function     int            `yaml:"function"`
	MaxRegisters int            `yaml:"max_registers"`
	WordOrder    string         `yaml:"word_order"`
	Registers    []registerYAML `yaml:"registers"`
}

type partYAML struct {
	Address    *int    `yaml:"address"`
	Type       string  `yaml:"type"`
	WordOrder  string  `yaml:"word_order"`
	Multiplier float64 `yaml:"multiplier"`
	Exponent   int     `yaml:"exponent"`
	Offset     float64 `yaml:"offset"`
	line, col  int
}

func (p *partYAML) UnmarshalYAML(n *yaml.Node) error {
	type plain partYAML
	if err := n.Decode((*plain)(p)); err != nil {
		return err
	}
	p.line, p.col = n.Line, n.Column
	return nil
}

type registerYAML struct {
	Quantity    string         `yaml:"quantity"`
	Unit        string         `yaml:"unit"`
	Description string         `yaml:"description"`
	Writable    bool           `yaml:"writable"`
	Min         *float64       `yaml:"min"`
	Max         *float64       `yaml:"max"`
	Bits        map[int]string `yaml:"bits"`
	Parts       []partYAML     `yaml:"parts"`
	// single-part shorthand; not an embedded partYAML, whose UnmarshalYAML
	// would be promoted and swallow the whole register.
	Address    *int    `yaml:"address"`
	Type       string  `yaml:"type"`
	WordOrder  string  `yaml:"word_order"`
	Multiplier float64 `yaml:"multiplier"`
	Exponent   int     `yaml:"exponent"`
	Offset     float64 `yaml:"offset"`
	line, col  int
}

func (r *registerYAML) UnmarshalYAML(n *yaml.Node) error {
	type plain registerYAML
	if err := n.Decode((*plain)(r)); err != nil {
		return err
	}
	r.line, r.col = n.Line, n.Column
	return nil
}

// LoadProfile reads and validates one profile file.
func LoadProfile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseProfile(path, data)
}

// LoadProfiles reads every *.yaml profile in dir, keyed by profile name.
func LoadProfiles(dir string) (map[string]*Profile, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Profile, len(files))
	var errs []error
	for _, f := range files {
		p, err := LoadProfile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := out[p.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: %w: name %q already used by %s", f, ErrProfile, p.Name, prev.File))
			continue
		}
		out[p.Name] = p
	}
	return out, errors.Join(errs...)
}

// ParseProfile decodes and validates a profile; file names the source in
// errors, which read `file:line:col: what is wrong`, every problem at once.
func ParseProfile(file string, data []byte) (*Profile, error) {
	var y profileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", file, ErrProfile, err)
	}
	var errs []string
	bad := func(line, col int, format string, a ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d:%d: %s", file, line, col, fmt.Sprintf(format, a...)))
	}
	p := &Profile{Name: y.Name, Model: y.Model, Source: y.Source, Function: byte(y.Function), MaxRegisters: y.MaxRegisters, File: file}
	if p.Name == "" {
		bad(1, 1, "name: missing")
	}
	if p.Source == "" {
		bad(1, 1, "source: missing (name the published register map this profile follows)")
	}
	if y.Function != 3 && y.Function != 4 {
		bad(1, 1, "function: %d, want 3 (holding registers) or 4 (input registers)", y.Function)
	}
	if p.MaxRegisters == 0 {
		p.MaxRegisters = MaxReadRegisters
	}
	if p.MaxRegisters < 1 || p.MaxRegisters > MaxReadRegisters {
		bad(1, 1, "max_registers: %d is out of range 1..%d", p.MaxRegisters, MaxReadRegisters)
	}
	defOrder := ABCD
	if y.WordOrder != "" {
		o, err := ParseWordOrder(y.WordOrder)
		if err != nil {
			bad(1, 1, "word_order: %v", err)
		}
		defOrder = o
	}
	seen := map[string]bool{}
	for i, ry := range y.Registers {
		at := fmt.Sprintf("registers[%d]", i)
		r := Register{Quantity: ry.Quantity, Unit: ry.Unit, Description: ry.Description, Writable: ry.Writable, Line: ry.line, Min: ry.Min, Max: ry.Max}
		if r.Min != nil && r.Max != nil && *r.Min >= *r.Max {
			bad(ry.line, ry.col, "%s: min %g is not below max %g", at, *r.Min, *r.Max)
		}
		if r.Quantity == "" {
			bad(ry.line, ry.col, "%s.quantity: missing", at)
		} else if seen[r.Quantity] {
			bad(ry.line, ry.col, "%s.quantity: %q appears twice", at, r.Quantity)
		}
		seen[r.Quantity] = true
		if want, ok := canonicalUnit[r.Quantity]; ok && r.Unit != want {
			bad(ry.line, ry.col, "%s.unit: %q, want %q for %s (scale the register into it)", at, r.Unit, want, r.Quantity)
		}
		parts := ry.Parts
		if len(parts) == 0 {
			parts = []partYAML{{Address: ry.Address, Type: ry.Type, WordOrder: ry.WordOrder,
				Multiplier: ry.Multiplier, Exponent: ry.Exponent, Offset: ry.Offset, line: ry.line, col: ry.col}}
		} else if ry.Address != nil || ry.Type != "" {
			bad(ry.line, ry.col, "%s: give either address/type or parts, not both", at)
		}
		for j, py := range parts {
			pat := at
			if len(ry.Parts) > 0 {
				pat = fmt.Sprintf("%s.parts[%d]", at, j)
			}
			var pt Part
			if py.Address == nil {
				bad(py.line, py.col, "%s.address: missing", pat)
			} else if *py.Address < 0 || *py.Address > 0xFFFF {
				bad(py.line, py.col, "%s.address: %d is out of range 0..65535", pat, *py.Address)
			} else {
				pt.Address = uint16(*py.Address)
			}
			t, err := ParseType(py.Type)
			if err != nil {
				bad(py.line, py.col, "%s.type: %v", pat, err)
			}
			pt.Type = t
			pt.Order = defOrder
			if py.WordOrder != "" {
				if pt.Order, err = ParseWordOrder(py.WordOrder); err != nil {
					bad(py.line, py.col, "%s.word_order: %v", pat, err)
				}
			}
			pt.Scale = Scale{Multiplier: py.Multiplier, Exponent: py.Exponent, Offset: py.Offset}
			if py.Address != nil && int(pt.Address)+t.Registers() > 0x10000 {
				bad(py.line, py.col, "%s: runs past register 65535", pat)
			}
			r.Parts = append(r.Parts, pt)
		}
		if r.Writable && (len(r.Parts) != 1 || r.Parts[0].Type.Registers() != 1) {
			bad(ry.line, ry.col, "%s.writable: only single-register quantities can be written", at)
		}
		if len(ry.Bits) > 0 {
			r.Bits = map[int]reading.Status{}
			for bit, name := range ry.Bits {
				s, ok := statusByName(name)
				if !ok {
					bad(ry.line, ry.col, "%s.bits[%d]: unknown status %q (want one of %s)", at, bit, name, strings.Join(reading.Status(0xFFFF).Names(), ", "))
				}
				if bit < 0 || bit >= 16*len(r.Parts)*max(1, r.Parts[0].Type.Registers()) {
					bad(ry.line, ry.col, "%s.bits: bit %d does not fit the register", at, bit)
				}
				r.Bits[bit] = s
			}
		}
		p.Registers = append(p.Registers, r)
	}
	if len(p.Registers) == 0 {
		bad(1, 1, "registers: none defined")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%s", ErrProfile, strings.Join(errs, "\n"))
	}
	return p, nil
}

func statusByName(name string) (reading.Status, bool) {
	for i := 0; i < 16; i++ {
		n := reading.Status(1 << i).Names()
		if len(n) == 1 && n[0] == name {
			return 1 << i, true
		}
	}
	return 0, false
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
