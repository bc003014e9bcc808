package drivers

import (
	"fmt"
	"time"

	"tidegate/drivers/link"
)

// Protocols a bus may speak.
const (
	ProtoModbus    = "modbus"     // Modbus RTU on a serial line or an RTU-over-TCP converter
	ProtoModbusTCP = "modbus-tcp" // Modbus TCP (MBAP)
	ProtoMBus      = "mbus"       // wired M-Bus on a serial line or a TCP converter
)

// BusConfig is one line.
type BusConfig struct {
	Name     string
	Protocol string
	Link     link.Config
	Timeout  time.Duration // answer timeout; 0 = from the baud rate
	Retries  int           // immediate retries of a failed poll (default 1)
	Backoff  time.Duration // first wait before a failing meter is tried again (default 10s)
}

// MeterConfig is one meter on a bus.
type MeterConfig struct {
	ID        string
	Address   int    // Modbus unit id / M-Bus primary address
	Secondary string // M-Bus secondary address (8 id digits, or 16 hex digits id+man+ver+med)
	Profile   string // Modbus profile name
	Interval  time.Duration
	Billing   string // local HH:MM of the guaranteed daily billing read; "" = none
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
	default:
		return 255*char + 200*time.Millisecond
	}
}

func (c *BusConfig) check() error {
	switch c.Protocol {
	case ProtoModbus, ProtoModbusTCP, ProtoMBus:
	default:
		return fmt.Errorf("bus %s: protocol %q, want modbus, modbus-tcp or mbus", c.Name, c.Protocol)
	}
	if c.Link.Baud == 0 {
		c.Link.Baud = map[string]int{ProtoMBus: 2400}[c.Protocol]
		if c.Link.Baud == 0 {
			c.Link.Baud = 9600
		}
	}
	if c.Link.Parity == "" && c.Protocol == ProtoMBus {
		c.Link.Parity = "E"
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
