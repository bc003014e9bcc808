package simulator

import (
	"fmt"
	"time"
)

// Line is a bus's serial frame format.
type Line struct {
	Baud     int
	DataBits int    // default 8
	Parity   string // "N", "E" or "O"; default "N" for Modbus, "E" for M-Bus
	StopBits int    // default 1
}

// BitsPerChar counts start, data, parity and stop bits: 10 for 8N1, 11 for 8E1.
func (l Line) BitsPerChar() int {
	n := 1 + l.DataBits + l.StopBits
	if l.Parity == "E" || l.Parity == "O" {
		n++
	}
	return n
}

// CharTime is how long one character occupies the wire.
func (l Line) CharTime() time.Duration {
	return time.Duration(l.BitsPerChar()) * time.Second / time.Duration(l.Baud)
}

// WireTime is how long n characters occupy the wire.
func (l Line) WireTime(n int) time.Duration {
	return time.Duration(n*l.BitsPerChar()) * time.Second / time.Duration(l.Baud)
}

// ModbusGap is the 3.5-character silence that ends an RTU frame; above
// 19200 baud the specification fixes it at 1.75 ms.
func (l Line) ModbusGap() time.Duration {
	if l.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return l.CharTime() * 7 / 2
}

func (l *Line) defaults(protocol string) error {
	if l.Baud == 0 {
		l.Baud = map[string]int{ProtocolModbus: 9600, ProtocolMBus: 2400, ProtocolCJT188: 2400}[protocol]
	}
	if l.DataBits == 0 {
		l.DataBits = 8
	}
	if l.StopBits == 0 {
		l.StopBits = 1
	}
	if l.Parity == "" {
		l.Parity = map[string]string{ProtocolModbus: "N", ProtocolMBus: "E", ProtocolCJT188: "E"}[protocol]
	}
	switch {
	case l.Baud < 300 || l.Baud > 921600:
		return fmt.Errorf("baud %d is out of range 300..921600", l.Baud)
	case l.DataBits < 7 || l.DataBits > 8:
		return fmt.Errorf("data_bits %d, want 7 or 8", l.DataBits)
	case l.StopBits < 1 || l.StopBits > 2:
		return fmt.Errorf("stop_bits %d, want 1 or 2", l.StopBits)
	case l.Parity != "N" && l.Parity != "E" && l.Parity != "O":
		return fmt.Errorf("parity %q, want N, E or O", l.Parity)
	}
	return nil
}
