package drivers

import (
	"fmt"
	"time"

	dcjt "tidegate/drivers/cjt188"
	"tidegate/drivers/link"
	"tidegate/protocol/cjt188"
)

// Protocols a bus may speak.
const (
	ProtoModbus    = "modbus"     // Modbus RTU on a serial line or an RTU-over-TCP converter
	ProtoModbusTCP = "modbus-tcp" // Modbus TCP (MBAP)
	ProtoMBus      = "mbus"       // wired M-Bus on a serial line or a TCP converter
	ProtoCJT188    = "cjt188"     // CJ/T 188 on an M-Bus or RS-485 line or a TCP converter
)

// defaultDrift is how far a CJ/T 188 meter clock may be off the gateway's
// before a clock_drift event.
const defaultDrift = 5 * time.Minute

// BusConfig is one line.
type BusConfig struct {
	Name     string
	Protocol string
	Link     link.Config
	Timeout  time.Duration // answer timeout; 0 = from the baud rate
	Retries  int           // immediate retries of a failed poll (default 1)
	Backoff  time.Duration // first wait before a failing meter is tried again (default 10s)
	CJT      CJTBusConfig  // protocol cjt188 only
}

// CJTBusConfig is what a CJ/T 188 bus has beyond the common settings.
type CJTBusConfig struct {
	Preamble       int            // FE wake-up bytes before each request, 0..4 (0: none)
	DriftThreshold time.Duration  // a meter clock this far off the gateway's sends a clock_drift event (default 5 min)
	Location       *time.Location // the zone meter clocks keep (default: the gateway's local zone)
}

// CJTMeterConfig is what a CJ/T 188 meter has beyond the common settings.
type CJTMeterConfig struct {
	Address       string // 14 digits as printed on the meter (A6..A0)
	MeterType     string // two hex digits, default 10 (cold water)
	DIOrder       string // high-first (default, the 2004 order: 90 1F) or low-first (1F 90)
	ClockOrder    string // seconds-first, century-first or "" (either)
	StatusLayout  cjt188.Layout
	SettlementDay int  // 1..28, 0 unknown: dates the settlement-day volume
	Valve         bool // valve control allowed (opt-in): Bus.Valve refuses it otherwise
}

// MeterConfig is one meter on a bus.
type MeterConfig struct {
	ID        string
	Address   int    // Modbus unit id / M-Bus primary address
	Secondary string // M-Bus secondary address (8 id digits, or 16 hex digits id+man+ver+med)
	Profile   string // Modbus profile name
	Interval  time.Duration
	Billing   string // local HH:MM of the guaranteed daily billing read; "" = none
	// Protocol is the meter's own protocol on a mixed line: ProtoCJT188
	// for a CJ/T 188 meter on an M-Bus bus; "" speaks the bus's.
	Protocol string
	CJT      CJTMeterConfig
	// Location is the zone the meter's clock keeps (nil: the gateway's
	// local zone): M-Bus date-times are placed in it.
	Location *time.Location
}

// defaultTimeout is the answer timeout when none is configured. Modbus: the
// longest answer (255 bytes) plus a generous turnaround. M-Bus: EN 13757-2
// allows 11 bit times + 330 bit times + 50 ms before the answer starts; add
// the time a long telegram takes to arrive.
func defaultTimeout(c BusConfig) time.Duration {
	char := c.Link.CharTime()
	switch c.Protocol {
	case ProtoMBus:
		bit := char / time.Duration(c.Link.BitsPerChar())
		return 341*bit + 50*time.Millisecond + 261*char
	case ProtoCJT188:
		return dcjt.AnswerTimeout(c.Link)
	default:
		return 255*char + 200*time.Millisecond
	}
}

func (c *BusConfig) check() error {
	switch c.Protocol {
	case ProtoModbus, ProtoModbusTCP, ProtoMBus, ProtoCJT188:
	default:
		return fmt.Errorf("bus %s: protocol %q, want modbus, modbus-tcp, mbus or cjt188", c.Name, c.Protocol)
	}
	if c.Link.Baud == 0 {
		c.Link.Baud = map[string]int{ProtoMBus: 2400, ProtoCJT188: 2400}[c.Protocol]
		if c.Link.Baud == 0 {
			c.Link.Baud = 9600
		}
	}
	if c.Link.Parity == "" && (c.Protocol == ProtoMBus || c.Protocol == ProtoCJT188) {
		c.Link.Parity = "E"
	}
	if c.Protocol == ProtoCJT188 {
		if c.CJT.Preamble < 0 || c.CJT.Preamble > 4 {
			return fmt.Errorf("bus %s: preamble %d, want 0..4 FE bytes", c.Name, c.CJT.Preamble)
		}
	}
	if c.CJT.DriftThreshold <= 0 {
		c.CJT.DriftThreshold = defaultDrift
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout(*c)
	}
	if c.Retries == 0 {
		c.Retries = 1
	}
	if c.Backoff <= 0 {
		c.Backoff = 10 * time.Second
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	return nil
}
