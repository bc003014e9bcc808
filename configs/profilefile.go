package configs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	pmodbus "tidegate/protocol/modbus"
	"tidegate/reading"
)

// The Modbus profile file format: its YAML schema, loading and checks.
// protocol/modbus holds a profile as plain Go values (bytes in, values out);
// reading files is this package's, where configs are loaded.

// ErrProfile is wrapped by every profile validation error.
var ErrProfile = errors.New("invalid profile")

// canonicalUnit is the unit each canonical quantity must have after scaling,
// so a profile can't silently report litres as cubic metres.
var canonicalUnit = map[string]string{
	pmodbus.QForward: "m3", pmodbus.QReverse: "m3", pmodbus.QNet: "m3", pmodbus.QFlow: "m3/h", pmodbus.QTemperature: "degC", pmodbus.QBattery: "mV",
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
func LoadProfile(path string) (*pmodbus.Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseProfile(path, data)
}

// LoadProfiles reads every *.yaml profile in dir, keyed by profile name.
func LoadProfiles(dir string) (map[string]*pmodbus.Profile, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*pmodbus.Profile, len(files))
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
func ParseProfile(file string, data []byte) (*pmodbus.Profile, error) {
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
	p := &pmodbus.Profile{Name: y.Name, Model: y.Model, Source: y.Source, Function: byte(y.Function), MaxRegisters: y.MaxRegisters, File: file}
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
		p.MaxRegisters = pmodbus.MaxReadRegisters
	}
	if p.MaxRegisters < 1 || p.MaxRegisters > pmodbus.MaxReadRegisters {
		bad(1, 1, "max_registers: %d is out of range 1..%d", p.MaxRegisters, pmodbus.MaxReadRegisters)
	}
	defOrder := pmodbus.ABCD
	if y.WordOrder != "" {
		o, err := pmodbus.ParseWordOrder(y.WordOrder)
		if err != nil {
			bad(1, 1, "word_order: %v", err)
		}
		defOrder = o
	}
	seen := map[string]bool{}
	for i, ry := range y.Registers {
		at := fmt.Sprintf("registers[%d]", i)
		r := pmodbus.Register{Quantity: ry.Quantity, Unit: ry.Unit, Description: ry.Description, Writable: ry.Writable, Line: ry.line, Min: ry.Min, Max: ry.Max}
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
			var pt pmodbus.Part
			if py.Address == nil {
				bad(py.line, py.col, "%s.address: missing", pat)
			} else if *py.Address < 0 || *py.Address > 0xFFFF {
				bad(py.line, py.col, "%s.address: %d is out of range 0..65535", pat, *py.Address)
			} else {
				pt.Address = uint16(*py.Address)
			}
			t, err := pmodbus.ParseType(py.Type)
			if err != nil {
				bad(py.line, py.col, "%s.type: %v", pat, err)
			}
			pt.Type = t
			pt.Order = defOrder
			if py.WordOrder != "" {
				if pt.Order, err = pmodbus.ParseWordOrder(py.WordOrder); err != nil {
					bad(py.line, py.col, "%s.word_order: %v", pat, err)
				}
			}
			pt.Scale = pmodbus.Scale{Multiplier: py.Multiplier, Exponent: py.Exponent, Offset: py.Offset}
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
