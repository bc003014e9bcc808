package simulator

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"tidegate/protocol/cjt188"
	"tidegate/simulator/water"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("simulator config")

// Config is a metersim configuration file.
type Config struct {
	Seed     int64       `yaml:"seed"`
	Speed    float64     `yaml:"speed"`    // simulation seconds per real second (default 1)
	Start    time.Time   `yaml:"start"`    // simulation start (default: now)
	Profiles string      `yaml:"profiles"` // Modbus profile folder, relative to the config file, over the built-in profiles (default: those alone)
	Buses    []BusConfig `yaml:"buses"`

	file string
}

// BusConfig is one simulated line.
type BusConfig struct {
	Name       string         `yaml:"name"`
	Protocol   string         `yaml:"protocol"` // modbus, mbus or cjt188
	Baud       int            `yaml:"baud"`
	DataBits   int            `yaml:"data_bits"`
	Parity     string         `yaml:"parity"`
	StopBits   int            `yaml:"stop_bits"`
	Turnaround water.Duration `yaml:"turnaround"` // meter response latency (default 10ms)
	// Framing is how a Modbus slave knows a request is complete: "length"
	// (default: by its function code, as libmodbus and much meter firmware
	// do) or "silence" (3.5 characters of it, as FreeModbus does; the
	// answer then starts that much later).
	Framing   string        `yaml:"framing"`
	Speed     float64       `yaml:"speed"` // this bus's simulation seconds per real second (default: the config's)
	PTY       *bool         `yaml:"pty"`   // default true
	TCP       string        `yaml:"tcp"`   // listen address for a TCP converter, e.g. 127.0.0.1:0
	Faults    BusFaults     `yaml:"faults"`
	Meters    []MeterConfig `yaml:"meters"`
	line, col int
}

// MeterConfig is one simulated meter.
type MeterConfig struct {
	ID           string       `yaml:"id"`
	Address      int          `yaml:"address"`      // Modbus 1..247, M-Bus primary 1..250
	Profile      string       `yaml:"profile"`      // Modbus: profile name
	Model        string       `yaml:"model"`        // M-Bus: flowiq, ultrimis or replay
	Secondary    string       `yaml:"secondary"`    // M-Bus: 8-digit identification number
	Manufacturer string       `yaml:"manufacturer"` // M-Bus: 3-letter code
	Replay       string       `yaml:"replay"`       // M-Bus replay: hex file, relative to the config file
	Water        water.Config `yaml:"water"`
	Faults       MeterFaults  `yaml:"faults"`
	// Protocol is cjt188 for a CJ/T 188 meter on an M-Bus bus (a mixed
	// line); "" speaks the bus's protocol.
	Protocol  string    `yaml:"protocol"`
	CJT       CJTConfig `yaml:",inline"`
	line, col int
	// addressText is the address as written: a CJ/T 188 address is 14
	// digits whose leading zeros matter (and YAML would read them as octal).
	addressText string
}

// CJTConfig is what a CJ/T 188 meter has beyond the common fields; its
// address is the 14 digits of its label.
type CJTConfig struct {
	MeterType     string `yaml:"meter_type"`     // two hex digits, default 10 (cold water)
	DIOrder       string `yaml:"di_order"`       // high-first (default, 90 1F) or low-first (1F 90)
	ReplyDIOrder  string `yaml:"reply_di_order"` // the order it answers in (default di_order)
	ClockOrder    string `yaml:"clock_order"`    // seconds-first (default), century-first or none
	Preamble      int    `yaml:"preamble"`       // FE bytes before a reply, 0..4
	StatusLayout  string `yaml:"status_layout"`  // common (default) or mirrored
	Total         string `yaml:"total"`          // net (default) or forward
	SettlementDay int    `yaml:"settlement_day"` // 1..28, 0 = every midnight
	Valve         bool   `yaml:"valve"`          // has a shut-off valve (A017)
	// ClockOffset sets the meter clock this far off the simulation's at
	// start (a clock that was set wrong), until A015 (or an M-Bus meter's
	// set-time) sets it.
	ClockOffset water.Duration `yaml:"clock_offset"`
}

func (b *BusConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain BusConfig
	if err := n.Decode((*plain)(b)); err != nil {
		return err
	}
	b.line, b.col = n.Line, n.Column
	return nil
}

func (m *MeterConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain MeterConfig
	if n.Kind == yaml.MappingNode {
		// Keep the address's text; decode a 14-digit one as 0 so YAML
		// neither reads leading zeros as octal nor refuses a quoted one.
		c := *n
		c.Content = append([]*yaml.Node(nil), n.Content...)
		for i := 0; i+1 < len(c.Content); i += 2 {
			if k, v := c.Content[i], c.Content[i+1]; k.Value == "address" && v.Kind == yaml.ScalarNode && len(v.Value) == 14 {
				m.addressText = v.Value
				c.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "0", Line: v.Line, Column: v.Column}
			}
		}
		n = &c
	}
	if err := n.Decode((*plain)(m)); err != nil {
		return err
	}
	m.line, m.col = n.Line, n.Column
	return nil
}

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes and checks a configuration; errors read
// `file:line:col: what is wrong`, every problem at once.
func ParseConfig(file string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, file, err)
	}
	c.file = file
	var errs []string
	bad := func(line, col int, format string, a ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d:%d: %s", file, line, col, fmt.Sprintf(format, a...)))
	}
	if c.Speed == 0 {
		c.Speed = 1
	}
	if c.Speed < 0 || c.Speed > 100000 {
		bad(1, 1, "speed: %v is out of range (0, 100000]", c.Speed)
	}
	if c.Profiles != "" && !filepath.IsAbs(c.Profiles) {
		c.Profiles = filepath.Join(filepath.Dir(file), c.Profiles)
	}
	if len(c.Buses) == 0 {
		bad(1, 1, "buses: none defined")
	}
	names, ids := map[string]bool{}, map[string]bool{}
	for i := range c.Buses {
		b := &c.Buses[i]
		at := fmt.Sprintf("buses[%d]", i)
		if b.Name == "" || names[b.Name] {
			bad(b.line, b.col, "%s.name: missing or used twice (%q)", at, b.Name)
		}
		names[b.Name] = true
		if b.Protocol != ProtocolModbus && b.Protocol != ProtocolMBus && b.Protocol != ProtocolCJT188 {
			bad(b.line, b.col, "%s.protocol: %q, want modbus, mbus or cjt188", at, b.Protocol)
		}
		l := Line{Baud: b.Baud, DataBits: b.DataBits, Parity: b.Parity, StopBits: b.StopBits}
		if err := l.defaults(b.Protocol); err != nil {
			bad(b.line, b.col, "%s: %v", at, err)
		}
		b.Baud, b.DataBits, b.Parity, b.StopBits = l.Baud, l.DataBits, l.Parity, l.StopBits
		if b.Speed < 0 || b.Speed > 100000 {
			bad(b.line, b.col, "%s.speed: %v is out of range (0, 100000]", at, b.Speed)
		}
		if b.Turnaround == 0 {
			b.Turnaround = water.Duration(10 * time.Millisecond)
		}
		if bb := b.Faults.Babble; bb.Rate < 0 || bb.Burst < 0 || bb.Pause < 0 || bb.After < 0 || (bb.Burst > 0 && bb.Pause == 0) {
			bad(b.line, b.col, "%s.faults.babble: rate, burst, pause and after must not be negative, and bursts need a pause", at)
		} else if _, err := bb.pattern(); err != nil {
			bad(b.line, b.col, "%s.faults: %v", at, err)
		}
		switch b.Framing {
		case "", FramingLength, FramingSilence:
			if b.Framing != "" && b.Protocol != ProtocolModbus {
				bad(b.line, b.col, "%s.framing: only a Modbus bus has a choice (M-Bus and CJ/T 188 frames carry their length)", at)
			}
		default:
			bad(b.line, b.col, "%s.framing: %q, want length or silence", at, b.Framing)
		}
		if b.PTY == nil {
			t := true
			b.PTY = &t
		}
		if !*b.PTY && b.TCP == "" {
			bad(b.line, b.col, "%s: neither pty nor tcp: nobody could reach it", at)
		}
		addrs := map[int]bool{}
		cjtAddrs := map[string]bool{}
		for j := range b.Meters {
			m := &b.Meters[j]
			mat := fmt.Sprintf("%s.meters[%d]", at, j)
			if m.ID == "" || ids[m.ID] {
				bad(m.line, m.col, "%s.id: missing or used twice (%q)", mat, m.ID)
			}
			ids[m.ID] = true
			switch {
			case m.Protocol == "" || m.Protocol == b.Protocol:
			case m.Protocol == ProtocolCJT188 && b.Protocol == ProtocolMBus:
			default:
				bad(m.line, m.col, "%s.protocol: %q on a %s bus; only cjt188 meters may share an mbus bus", mat, m.Protocol, b.Protocol)
			}
			if m.speaks(b.Protocol) == ProtocolCJT188 {
				if _, err := m.cjtConfig(); err != nil {
					bad(m.line, m.col, "%s: %v", mat, err)
				} else if cjtAddrs[m.addressText] {
					bad(m.line, m.col, "%s.address: %s is used twice on bus %s", mat, m.addressText, b.Name)
				}
				cjtAddrs[m.addressText] = true
				continue
			}
			if m.addressText != "" {
				bad(m.line, m.col, "%s.address: %s is a CJ/T 188 address on a %s bus", mat, m.addressText, b.Protocol)
				continue
			}
			hi := 247
			if b.Protocol == ProtocolMBus {
				hi = 250
			}
			if m.Address < 1 || m.Address > hi {
				bad(m.line, m.col, "%s.address: %d is out of range 1..%d for %s", mat, m.Address, hi, b.Protocol)
			} else if addrs[m.Address] {
				bad(m.line, m.col, "%s.address: %d is used twice on bus %s", mat, m.Address, b.Name)
			}
			addrs[m.Address] = true
			switch b.Protocol {
			case ProtocolModbus:
				if m.Profile == "" {
					bad(m.line, m.col, "%s.profile: missing (a built-in profile's name, or a file name in profiles: without .yaml)", mat)
				}
			case ProtocolMBus:
				if m.Model == "" {
					m.Model = "flowiq"
				}
				if m.Replay != "" && !filepath.IsAbs(m.Replay) {
					m.Replay = filepath.Join(filepath.Dir(file), m.Replay)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%s", ErrConfig, strings.Join(errs, "\n"))
	}
	return &c, nil
}

// speaks is the meter's protocol on a bus of protocol bus.
func (m MeterConfig) speaks(bus string) string {
	if m.Protocol != "" {
		return m.Protocol
	}
	return bus
}

// CJTAddress is a CJ/T 188 meter's address as written in the file.
func (m MeterConfig) CJTAddress() string { return m.addressText }

// cjtConfig is the simulated meter a CJ/T 188 entry describes (without its
// water model).
func (m MeterConfig) cjtConfig() (CJTMeterConfig, error) {
	c := CJTMeterConfig{ID: m.ID, Preamble: m.CJT.Preamble, Total: m.CJT.Total, SettlementDay: m.CJT.SettlementDay, Valve: m.CJT.Valve,
		ClockOffset: time.Duration(m.CJT.ClockOffset)}
	var err error
	if m.addressText == "" {
		return c, fmt.Errorf("address: missing: the 14 digits of the meter's label")
	}
	if c.Address, err = cjt188.ParseAddress(m.addressText); err != nil || c.Address.IsBroadcast() {
		return c, fmt.Errorf("address: %q is not 14 digits", m.addressText)
	}
	if m.CJT.MeterType != "" {
		if c.Type, err = cjt188.ParseMeterType(m.CJT.MeterType); err != nil {
			return c, err
		}
	}
	if c.DIOrder, err = cjt188.ParseDIOrder(m.CJT.DIOrder); err != nil {
		return c, err
	}
	if m.CJT.ReplyDIOrder != "" {
		o, err := cjt188.ParseDIOrder(m.CJT.ReplyDIOrder)
		if err != nil {
			return c, fmt.Errorf("reply_%w", err)
		}
		c.ReplyOrder = &o
	}
	switch m.CJT.ClockOrder {
	case "", "seconds-first":
		c.Clock = cjt188.ClockSecondsFirst
	case "century-first":
		c.Clock = cjt188.ClockCenturyFirst
	case "none":
		c.NoClock = true
	default:
		return c, fmt.Errorf("clock_order %q: want seconds-first, century-first or none", m.CJT.ClockOrder)
	}
	switch m.CJT.StatusLayout {
	case "", "common":
		c.Layout = cjt188.CommonLayout
	case "mirrored":
		c.Layout = cjt188.MirroredLayout
	default:
		return c, fmt.Errorf("status_layout %q: want common or mirrored", m.CJT.StatusLayout)
	}
	if c.Preamble < 0 || c.Preamble > cjt188.MaxPreamble {
		return c, fmt.Errorf("preamble %d: want 0..%d FE bytes", c.Preamble, cjt188.MaxPreamble)
	}
	if c.Total != "" && c.Total != "net" && c.Total != "forward" {
		return c, fmt.Errorf("total %q: want net or forward", c.Total)
	}
	if c.SettlementDay < 0 || c.SettlementDay > 28 {
		return c, fmt.Errorf("settlement_day %d: want 1..28 (0: every midnight)", c.SettlementDay)
	}
	return c, nil
}
