package config

import (
	"time"

	"go.yaml.in/yaml/v3"

	"tidegate/protocol/cjt188"
)

// CJT188 is what a CJ/T 188 meter has beyond the common keys; its address
// is the 14 digits printed on it (A6..A0), in `address`.
type CJT188 struct {
	// Protocol is cjt188 for a CJ/T 188 meter on an mbus bus (a mixed
	// line: both ride the M-Bus physical layer); "" speaks the bus's.
	Protocol      string `yaml:"protocol"`
	MeterType     string `yaml:"meter_type"`     // two hex digits; "" = 10 (cold water)
	DIOrder       string `yaml:"di_order"`       // high-first (default, the 2004 order: 90 1F on the wire) or low-first (1F 90)
	ClockOrder    string `yaml:"clock_order"`    // seconds-first, century-first; "" = whichever makes a valid time
	StatusProfile string `yaml:"status_profile"` // status bit layout: cjt188-common (default) or cjt188-mirrored
	SettlementDay int    `yaml:"settlement_day"` // the meter's settlement day 1..28, dates its settlement-day volume; 0 = unknown
	Valve         bool   `yaml:"valve"`          // valve control allowed (tidegate valve, downlink "valve"); off by default
	// ValveMinInterval: at most one valve movement per this long (default 1m).
	ValveMinInterval time.Duration `yaml:"valve_min_interval"`

	// AddressLabel is the address as written in the file: leading zeros
	// matter, and YAML would read them as octal.
	AddressLabel string `yaml:"-"`
}

// DefaultPreamble is the number of FE bytes a CJ/T 188 bus sends when the
// file does not say: two wake most meters, and costs 18 ms at 2400 baud.
const DefaultPreamble = 2

// CJTPreamble is the bus's preamble with the default applied.
func (b Bus) CJTPreamble() int {
	if b.Preamble == nil {
		return DefaultPreamble
	}
	return *b.Preamble
}

// StatusLayout is the meter's status bit layout by profile name; ok is
// false for a name that is no CJ/T 188 profile.
func StatusLayout(profile string) (cjt188.Layout, bool) {
	if profile == "" {
		return cjt188.CommonLayout, true
	}
	l, ok := cjt188.StatusProfiles[profile]
	return l, ok
}

func checkCJTBus(b Bus, p string, at func(string, string, ...any), written func(string) bool) {
	if b.Protocol != ProtoCJT188 && b.Protocol != ProtoMBus { // an mbus bus may carry CJ/T 188 meters
		for _, k := range []string{"preamble", "clock_drift"} {
			if written(p + "." + k) {
				at(p+"."+k, "applies only to cjt188 and mbus buses; bus %q is %s", b.Name, b.Protocol)
			}
		}
		return
	}
	if n := b.CJTPreamble(); n < 0 || n > cjt188.MaxPreamble {
		at(p+".preamble", "%d is out of range 0..%d FE bytes", n, cjt188.MaxPreamble)
	}
	if b.ClockDrift < 0 || b.ClockDrift > 30*24*time.Hour {
		at(p+".clock_drift", "%s is out of range 0..720h", b.ClockDrift)
	}
}

// Speaks is the meter's protocol on bus b.
func (m Meter) Speaks(b Bus) string {
	if m.Protocol != "" {
		return m.Protocol
	}
	return b.Protocol
}

func checkCJTMeter(m *Meter, b Bus, p string, at func(string, string, ...any), written func(string) bool, nodes map[string]*yaml.Node) {
	keys := []string{"meter_type", "di_order", "clock_order", "status_profile", "settlement_day", "valve"}
	switch {
	case m.Protocol == "" || m.Protocol == b.Protocol:
	case m.Protocol == ProtoCJT188 && b.Protocol == ProtoMBus:
	default:
		at(p+".protocol", "%q cannot share bus %q (%s); only cjt188 meters may sit on an mbus bus", m.Protocol, m.Bus, b.Protocol)
		return
	}
	if m.Speaks(b) != ProtoCJT188 {
		for _, k := range keys {
			if written(p + "." + k) {
				at(p+"."+k, "applies only to CJ/T 188 meters; bus %q is %s", b.Name, b.Protocol)
			}
		}
		return
	}
	if n := nodes[p+".address"]; n != nil {
		m.AddressLabel = n.Value
	}
	switch a, err := cjt188.ParseAddress(m.AddressLabel); {
	case !written(p + ".address"):
		at(p+".address", "required: the meter's 14-digit address as printed on it, e.g. \"78330011223344\"")
	case err != nil || a.IsBroadcast():
		at(p+".address", "%q is not a CJ/T 188 address; expected the 14 digits printed on the meter (quote it to keep leading zeros visible)", m.AddressLabel)
	}
	if m.Secondary != "" {
		at(p+".secondary", "secondary addresses exist only on M-Bus; meter %q speaks cjt188", m.ID)
	}
	if m.Profile != "" {
		at(p+".profile", "profile is a Modbus register map; a CJ/T 188 meter's status bits are chosen with status_profile")
	}
	if m.MeterType != "" {
		if _, err := cjt188.ParseMeterType(m.MeterType); err != nil {
			at(p+".meter_type", "%v", err)
		}
	}
	if _, err := cjt188.ParseDIOrder(m.DIOrder); err != nil {
		at(p+".di_order", "%q: expected high-first (90 1F on the wire, the 2004 order) or low-first (1F 90)", m.DIOrder)
	}
	if m.ClockOrder != "" && m.ClockOrder != "seconds-first" && m.ClockOrder != "century-first" {
		at(p+".clock_order", "%q: expected seconds-first (ss mm hh DD MM YY CC) or century-first (CC YY MM DD hh mm ss)", m.ClockOrder)
	}
	if _, ok := StatusLayout(m.StatusProfile); !ok {
		at(p+".status_profile", "%q is not a CJ/T 188 status profile; expected one of %s", m.StatusProfile, cjt188.StatusProfileNames())
	}
	if m.SettlementDay < 0 || m.SettlementDay > 28 {
		at(p+".settlement_day", "%d is out of range 1..28 (0 = unknown)", m.SettlementDay)
	}
}
