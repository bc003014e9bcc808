package cjt188

import (
	"fmt"
	"math"
)

// Unit is a unit code.
type Unit byte

// Unit codes of CJ/T 188. The ×10/×100 codes sit between their base codes.
const (
	UnitWh     Unit = 0x02
	UnitKWh    Unit = 0x05
	UnitMWh    Unit = 0x08
	UnitKJ     Unit = 0x0B
	UnitMJ     Unit = 0x0E
	UnitGJ     Unit = 0x11
	UnitW      Unit = 0x14
	UnitKW     Unit = 0x17
	UnitMW     Unit = 0x1A
	UnitL      Unit = 0x29
	UnitL10    Unit = 0x2A
	UnitL100   Unit = 0x2B
	UnitM3     Unit = 0x2C
	UnitM3x10  Unit = 0x2D
	UnitM3x100 Unit = 0x2E
	UnitLh     Unit = 0x32
	UnitLh10   Unit = 0x33
	UnitLh100  Unit = 0x34
	UnitM3h    Unit = 0x35
	UnitM3h10  Unit = 0x36
	UnitM3h100 Unit = 0x37
)

var unitNames = map[Unit]string{
	UnitWh: "Wh", UnitWh + 1: "Wh×10", UnitWh + 2: "Wh×100",
	UnitKWh: "kWh", UnitKWh + 1: "kWh×10", UnitKWh + 2: "kWh×100",
	UnitMWh: "MWh", UnitMWh + 1: "MWh×10", UnitMWh + 2: "MWh×100",
	UnitKJ: "kJ", UnitKJ + 1: "kJ×10", UnitKJ + 2: "kJ×100",
	UnitMJ: "MJ", UnitMJ + 1: "MJ×10", UnitMJ + 2: "MJ×100",
	UnitGJ: "GJ", UnitGJ + 1: "GJ×10", UnitGJ + 2: "GJ×100",
	UnitW: "W", UnitW + 1: "W×10", UnitW + 2: "W×100",
	UnitKW: "kW", UnitKW + 1: "kW×10", UnitKW + 2: "kW×100",
	UnitMW: "MW", UnitMW + 1: "MW×10", UnitMW + 2: "MW×100",
	UnitL: "L", UnitL10: "L×10", UnitL100: "L×100",
	UnitM3: "m3", UnitM3x10: "m3×10", UnitM3x100: "m3×100",
	UnitLh: "L/h", UnitLh10: "L/h×10", UnitLh100: "L/h×100",
	UnitM3h: "m3/h", UnitM3h10: "m3/h×10", UnitM3h100: "m3/h×100",
}

// String names the unit ("m3", "L×10"); unknown codes as hex.
func (u Unit) String() string {
	if n, ok := unitNames[u]; ok {
		return n
	}
	return fmt.Sprintf("unit %02X", byte(u))
}

// VolumeFactor is what a value in u is multiplied by to give m³; ok is
// false for a code that is no volume.
func (u Unit) VolumeFactor() (float64, bool) {
	switch u {
	case UnitL:
		return 0.001, true
	case UnitL10:
		return 0.01, true
	case UnitL100:
		return 0.1, true
	case UnitM3:
		return 1, true
	case UnitM3x10:
		return 10, true
	case UnitM3x100:
		return 100, true
	}
	return 0, false
}

// Quantity is a 4-byte BCD value with two decimals (XXXXXX.XX) and its unit.
type Quantity struct {
	Value float64 // in Unit
	Unit  Unit
}

// M3 converts a volume to m³.
func (q Quantity) M3() (float64, error) {
	f, ok := q.Unit.VolumeFactor()
	if !ok {
		return 0, fmt.Errorf("%w %02X (%s) is not a volume", ErrUnit, byte(q.Unit), q.Unit)
	}
	// Round to the value's own resolution so 1000.10 m³ is not 1000.0999.
	return math.Round(q.Value*100*f*1e5) / 1e7, nil
}

// bcd reads BCD bytes, least significant first.
func bcd(b []byte) (uint64, error) {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		c := b[i]
		if !isBCD(c) {
			return 0, fmt.Errorf("%w byte %02X", ErrBCD, c)
		}
		v = v*100 + uint64(c>>4)*10 + uint64(c&0x0F)
	}
	return v, nil
}

// appendBCD appends v as n BCD bytes, least significant first.
func appendBCD(dst []byte, v uint64, n int) []byte {
	for range n {
		d := v % 100
		v /= 100
		dst = append(dst, byte(d/10)<<4|byte(d%10))
	}
	return dst
}

// decodeQuantity reads 4 BCD bytes and a unit code.
func decodeQuantity(b []byte) (Quantity, error) {
	v, err := bcd(b[:4])
	if err != nil {
		return Quantity{}, err
	}
	return Quantity{Value: float64(v) / 100, Unit: Unit(b[4])}, nil
}

// AppendQuantity appends q as 4 BCD bytes (two decimals) and its unit code.
// Values beyond 999999.99 wrap, as the meter's register does.
func AppendQuantity(dst []byte, q Quantity) []byte {
	v := uint64(math.Round(math.Max(q.Value, 0)*100)) % 100000000
	return append(appendBCD(dst, v, 4), byte(q.Unit))
}

// Clock is a meter's own date and time, in no zone: meters keep local time
// and nothing says which. The zero value is "no clock".
type Clock struct {
	Year, Month, Day, Hour, Minute, Second int
}

// IsZero reports "no clock" (the meter sent all zeros).
func (c Clock) IsZero() bool { return c == Clock{} }

// String is ISO 8601 without a zone, "2015-05-11T22:01:31".
func (c Clock) String() string {
	return fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", c.Year, c.Month, c.Day, c.Hour, c.Minute, c.Second)
}

func (c Clock) valid() bool {
	return c.Month >= 1 && c.Month <= 12 && c.Day >= 1 && c.Day <= daysIn(c.Year, c.Month) &&
		c.Hour <= 23 && c.Minute <= 59 && c.Second <= 59
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ClockOrder is the byte order of the 7 clock bytes.
type ClockOrder uint8

const (
	// ClockAuto takes the order in which the bytes make a valid time,
	// seconds first when both do.
	ClockAuto ClockOrder = iota
	// ClockSecondsFirst: ss mm hh DD MM YY CC, what most meters send.
	ClockSecondsFirst
	// ClockCenturyFirst: CC YY MM DD hh mm ss.
	ClockCenturyFirst
)

// ParseClockOrder reads "seconds-first", "century-first" or "" / "auto".
func ParseClockOrder(s string) (ClockOrder, error) {
	switch s {
	case "", "auto":
		return ClockAuto, nil
	case "seconds-first":
		return ClockSecondsFirst, nil
	case "century-first":
		return ClockCenturyFirst, nil
	}
	return 0, fmt.Errorf("clock_order %q: want seconds-first, century-first or auto", s)
}

// String names the order as the configuration does.
func (o ClockOrder) String() string {
	switch o {
	case ClockSecondsFirst:
		return "seconds-first"
	case ClockCenturyFirst:
		return "century-first"
	}
	return "auto"
}

// DecodeClock reads 7 BCD clock bytes. All zeros is the zero Clock (no
// clock) without error.
func DecodeClock(b []byte, o ClockOrder) (Clock, error) {
	if len(b) < 7 {
		return Clock{}, fmt.Errorf("%w: %d bytes, want 7", ErrClock, len(b))
	}
	b = b[:7]
	zero := true
	for _, c := range b {
		if c != 0 {
			zero = false
		}
		if !isBCD(c) {
			return Clock{}, fmt.Errorf("%w % X: %w byte %02X", ErrClock, b, ErrBCD, c)
		}
	}
	if zero {
		return Clock{}, nil
	}
	d := func(c byte) int { return int(c>>4)*10 + int(c&0x0F) }
	sf := Clock{Year: d(b[6])*100 + d(b[5]), Month: d(b[4]), Day: d(b[3]), Hour: d(b[2]), Minute: d(b[1]), Second: d(b[0])}
	cf := Clock{Year: d(b[0])*100 + d(b[1]), Month: d(b[2]), Day: d(b[3]), Hour: d(b[4]), Minute: d(b[5]), Second: d(b[6])}
	switch {
	case o == ClockSecondsFirst && sf.valid():
		return sf, nil
	case o == ClockCenturyFirst && cf.valid():
		return cf, nil
	case o == ClockAuto && sf.valid():
		return sf, nil
	case o == ClockAuto && cf.valid():
		return cf, nil
	}
	return Clock{}, fmt.Errorf("%w % X: no valid date and time (%s)", ErrClock, b, o)
}

// AppendClock appends c as 7 BCD bytes in order o (ClockAuto writes seconds
// first). The zero Clock is written as zeros.
func AppendClock(dst []byte, c Clock, o ClockOrder) ([]byte, error) {
	if c.IsZero() {
		return append(dst, 0, 0, 0, 0, 0, 0, 0), nil
	}
	if !c.valid() || c.Year < 0 || c.Year > 9999 {
		return dst, fmt.Errorf("%w %s: no valid date and time", ErrClock, c)
	}
	e := func(v int) byte { return byte(v/10)<<4 | byte(v%10) }
	b := []byte{e(c.Second), e(c.Minute), e(c.Hour), e(c.Day), e(c.Month), e(c.Year % 100), e(c.Year / 100)}
	if o == ClockCenturyFirst {
		for i, j := 0, 6; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
	}
	return append(dst, b...), nil
}

// Status is the 2-byte status word ST as sent: the first byte holds the
// common bits, the second is vendor-defined.
type Status [2]byte

// String is the two bytes as hex, "2184".
func (s Status) String() string { return fmt.Sprintf("%02X%02X", s[0], s[1]) }

// Valve states of the status word.
type Valve uint8

const (
	ValveStateOpen Valve = iota
	ValveStateClosed
	ValveStateUnknown // the code CJ/T 188 leaves undefined (10)
	ValveStateAbnormal
)

// String is "open", "closed", "abnormal" or "unknown".
func (v Valve) String() string {
	switch v {
	case ValveStateOpen:
		return "open"
	case ValveStateClosed:
		return "closed"
	case ValveStateAbnormal:
		return "abnormal"
	}
	return "unknown"
}

// Layout says where a vendor keeps the valve and battery bits in the
// status word's first byte: bit numbers 0 (D0) to 7 (D7). The zero value
// is the common layout (valve D0–D1, battery D2). It belongs in the meter's
// profile: at least one vendor mirrors the bits.
type Layout struct {
	ValveLow  uint8 // bit of the valve code's low bit (common: 0)
	ValveHigh uint8 // bit of its high bit (common: 1)
	Battery   uint8 // battery-low bit (common: 2)
}

// CommonLayout is D0–D1 valve (00 open, 01 closed, 11 abnormal), D2 battery low.
var CommonLayout = Layout{ValveLow: 0, ValveHigh: 1, Battery: 2}

// MirroredLayout is the same bits mirrored: valve D7–D6, battery D5.
var MirroredLayout = Layout{ValveLow: 7, ValveHigh: 6, Battery: 5}

// or is l, or the common layout for the zero value.
func (l Layout) or() Layout {
	if l == (Layout{}) {
		return CommonLayout
	}
	return l
}

func (l Layout) check() error {
	l = l.or()
	if l.ValveLow > 7 || l.ValveHigh > 7 || l.Battery > 7 || l.ValveLow == l.ValveHigh || l.Battery == l.ValveLow || l.Battery == l.ValveHigh {
		return fmt.Errorf("status layout %+v: three different bits 0..7", l)
	}
	return nil
}

// Check reports a layout whose bits are out of range or overlap.
func (l Layout) Check() error { return l.check() }

// Valve reads the valve code.
func (s Status) Valve(l Layout) Valve {
	l = l.or()
	code := (s[0]>>l.ValveLow)&1 | ((s[0]>>l.ValveHigh)&1)<<1
	switch code {
	case 0:
		return ValveStateOpen
	case 1:
		return ValveStateClosed
	case 3:
		return ValveStateAbnormal
	}
	return ValveStateUnknown
}

// BatteryLow reads the battery bit.
func (s Status) BatteryLow(l Layout) bool { l = l.or(); return (s[0]>>l.Battery)&1 != 0 }

// MakeStatus builds a status word in layout l, with vendor bits keeping
// their place (for the simulator).
func MakeStatus(l Layout, v Valve, batteryLow bool, vendor [2]byte) Status {
	l = l.or()
	s := Status(vendor)
	s[0] &^= 1<<l.ValveLow | 1<<l.ValveHigh | 1<<l.Battery
	code := map[Valve]byte{ValveStateOpen: 0, ValveStateClosed: 1, ValveStateUnknown: 2, ValveStateAbnormal: 3}[v]
	s[0] |= (code&1)<<l.ValveLow | (code>>1)<<l.ValveHigh
	if batteryLow {
		s[0] |= 1 << l.Battery
	}
	return s
}

// Current is the 901F reply: the current cumulative volume, the volume at
// the last settlement day, the meter clock (zero when the meter has none)
// and the status word.
type Current struct {
	Volume     Quantity
	Settlement Quantity
	Clock      Clock
	Status     Status
}

// CurrentLen is the 901F reply's data length: DI, SER, 2×5, 7, 2.
const CurrentLen = 22

// DecodeCurrent reads a 901F reply's body (after DI and SER).
func DecodeCurrent(body []byte, o ClockOrder) (Current, error) {
	if len(body) < CurrentLen-3 {
		return Current{}, fmt.Errorf("%w %02X: a 901F reply has %02X (22) data bytes", ErrLength, len(body)+3, CurrentLen)
	}
	var c Current
	var err error
	if c.Volume, err = decodeQuantity(body[0:5]); err != nil {
		return Current{}, fmt.Errorf("current volume: %w", err)
	}
	if c.Settlement, err = decodeQuantity(body[5:10]); err != nil {
		return Current{}, fmt.Errorf("settlement-day volume: %w", err)
	}
	if c.Clock, err = DecodeClock(body[10:17], o); err != nil {
		return Current{}, err
	}
	c.Status = Status{body[17], body[18]}
	return c, nil
}

// AppendCurrent appends a 901F reply body.
func AppendCurrent(dst []byte, c Current, o ClockOrder) ([]byte, error) {
	dst = AppendQuantity(dst, c.Volume)
	dst = AppendQuantity(dst, c.Settlement)
	dst, err := AppendClock(dst, c.Clock, o)
	if err != nil {
		return dst, err
	}
	return append(dst, c.Status[0], c.Status[1]), nil
}

// DecodeHistory reads a D120–D12B reply body: one settlement-day volume.
func DecodeHistory(body []byte) (Quantity, error) {
	if len(body) < 5 {
		return Quantity{}, fmt.Errorf("%w %02X: a D12x reply has 08 data bytes", ErrLength, len(body)+3)
	}
	return decodeQuantity(body[:5])
}

// DecodeDay reads an 8103/8104 reply body: a day of the month, BCD.
func DecodeDay(body []byte) (int, error) {
	if len(body) < 1 {
		return 0, fmt.Errorf("%w %02X: the reply carries the day", ErrLength, len(body)+3)
	}
	v, err := bcd(body[:1])
	if err != nil {
		return 0, err
	}
	if v < 1 || v > 31 {
		return 0, fmt.Errorf("%w: day %d", ErrClock, v)
	}
	return int(v), nil
}

// DecodeValveReply reads an A017 reply body: the status word after the
// action, when the meter sends one (ok false otherwise).
func DecodeValveReply(body []byte) (Status, bool) {
	if len(body) < 2 {
		return Status{}, false
	}
	return Status{body[0], body[1]}, true
}
