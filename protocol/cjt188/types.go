package cjt188

import (
	"fmt"
	"strings"
)

// MeterType is the T field.
type MeterType byte

// Meter types of CJ/T 188 (2004; 22 from 2018). 40–49 are user-defined.
const (
	TypeColdWater     MeterType = 0x10
	TypeHotWater      MeterType = 0x11
	TypeDrinkingWater MeterType = 0x12
	TypeReclaimed     MeterType = 0x13
	TypeHeat          MeterType = 0x20
	TypeCooling       MeterType = 0x21
	TypeHeatCooling   MeterType = 0x22
	TypeGas           MeterType = 0x30
	// TypeAny is the wildcard of broadcast requests (read address).
	TypeAny MeterType = 0xAA
)

// Medium is what a meter of this type measures, "" for the wildcard and
// for codes CJ/T 188 does not define.
func (t MeterType) Medium() string {
	switch t {
	case TypeColdWater:
		return "cold water"
	case TypeHotWater:
		return "hot water"
	case TypeDrinkingWater:
		return "drinking water"
	case TypeReclaimed:
		return "reclaimed water"
	case TypeHeat:
		return "heat"
	case TypeCooling:
		return "cooling"
	case TypeHeatCooling:
		return "heat and cooling"
	case TypeGas:
		return "gas"
	}
	if t >= 0x40 && t <= 0x49 {
		return "user-defined"
	}
	return ""
}

// IsWater reports a water meter type (10–13).
func (t MeterType) IsWater() bool { return t >= TypeColdWater && t <= TypeReclaimed }

// String is the code as two hex digits, as the issue and the labels write it.
func (t MeterType) String() string { return fmt.Sprintf("%02X", byte(t)) }

// ParseMeterType reads a type as two hex digits ("10").
func ParseMeterType(s string) (MeterType, error) {
	var v byte
	if len(s) != 2 {
		return 0, fmt.Errorf("meter type %q: want two hex digits such as 10", s)
	}
	if _, err := fmt.Sscanf(s, "%02X", &v); err != nil {
		return 0, fmt.Errorf("meter type %q: want two hex digits such as 10", s)
	}
	return MeterType(v), nil
}

// Address is a meter address in wire order: A0 (the two lowest digits) first.
type Address [7]byte

// Broadcast is AA×7: every meter on the line answers.
var Broadcast = Address{0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}

// String writes the address as people do, A6..A0: 14 digits, or
// AAAAAAAAAAAAAA for the broadcast address. Non-BCD bytes show as hex.
func (a Address) String() string {
	var sb strings.Builder
	for i := 6; i >= 0; i-- {
		fmt.Fprintf(&sb, "%02X", a[i])
	}
	return sb.String()
}

// IsBroadcast reports AA×7.
func (a Address) IsBroadcast() bool { return a == Broadcast }

// Valid reports an address of 14 BCD digits or the broadcast address.
func (a Address) Valid() bool {
	if a.IsBroadcast() {
		return true
	}
	for _, c := range a {
		if !isBCD(c) {
			return false
		}
	}
	return true
}

// ParseAddress reads 14 digits written A6..A0, as on the meter's label
// ("78330011223344"); spaces are ignored. AAAAAAAAAAAAAA is the broadcast address.
func ParseAddress(s string) (Address, error) {
	s = strings.ReplaceAll(s, " ", "")
	var a Address
	if len(s) != 14 {
		return a, fmt.Errorf("%w %q: want 14 digits as on the meter's label", ErrAddress, s)
	}
	if strings.EqualFold(s, "AAAAAAAAAAAAAA") {
		return Broadcast, nil
	}
	for i := range 7 {
		hi, lo := s[2*i], s[2*i+1]
		if hi < '0' || hi > '9' || lo < '0' || lo > '9' {
			return a, fmt.Errorf("%w %q: digit %q is not 0-9", ErrAddress, s, s[2*i:2*i+2])
		}
		a[6-i] = (hi-'0')<<4 | (lo - '0')
	}
	return a, nil
}

// Control is the C field: direction, error and follow-up bits over a function.
type Control byte

// Control bits and functions.
const (
	CtrlReply Control = 0x80 // D7: sent by the meter
	CtrlError Control = 0x40 // D6: the meter could not do what was asked
	CtrlMore  Control = 0x20 // D5: more frames follow

	FuncReadData       Control = 0x01
	FuncReadAddress    Control = 0x03
	FuncWriteData      Control = 0x04
	FuncReadKeyVersion Control = 0x09
	FuncWriteAddress   Control = 0x15
	FuncWriteMotorSync Control = 0x16
)

// IsReply reports a frame from the meter (D7).
func (c Control) IsReply() bool { return c&CtrlReply != 0 }

// IsError reports an error reply (D6).
func (c Control) IsError() bool { return c&CtrlError != 0 }

// More reports that more frames follow (D5).
func (c Control) More() bool { return c&CtrlMore != 0 }

// Function is D4..D0.
func (c Control) Function() Control { return c & 0x1F }

// Reply is the control code of the meter's good answer to a request with c.
func (c Control) Reply() Control { return c.Function() | CtrlReply }

// String is the code as two hex digits.
func (c Control) String() string { return fmt.Sprintf("%02X", byte(c)) }

// DI is a data identifier as written (0x901F), whatever its order on the wire.
type DI uint16

// Data identifiers a water meter and its concentrator use.
const (
	DICurrent       DI = 0x901F // current and settlement-day volume, clock, status
	DIClock         DI = 0x907F // the meter clock
	DIHistory1      DI = 0xD120 // settlement-day volume of the last month; D121..D12B the 11 before
	DIHistory12     DI = 0xD12B
	DIAddress       DI = 0x810A // read address
	DISettlementDay DI = 0x8103
	DIReadingDay    DI = 0x8104
	DIWriteClock    DI = 0xA015
	DIValve         DI = 0xA017
	DIWriteAddress  DI = 0xA018
	DISetSettlement DI = 0xA011
)

// String is the identifier as four hex digits, "901F".
func (d DI) String() string { return fmt.Sprintf("%04X", uint16(d)) }

// Known reports a data identifier this package knows.
func (d DI) Known() bool {
	switch d {
	case DICurrent, DIClock, DIAddress, DISettlementDay, DIReadingDay, DIWriteClock, DIValve, DIWriteAddress, DISetSettlement:
		return true
	}
	return d >= DIHistory1 && d <= DIHistory12 || d.IsFreeze()
}

// DIOrder is the byte order of a DI on the wire. Vendors and editions
// differ and the checksum is the same either way, so a master sends the
// order the meter's configuration names and accepts both in replies.
type DIOrder uint8

const (
	// HighFirst sends 901F as 90 1F: the order of CJ/T 188-2004's tables,
	// the default.
	HighFirst DIOrder = iota
	// LowFirst sends 901F as 1F 90.
	LowFirst
)

// Order2004 is the default order.
const Order2004 = HighFirst

// String names the order as the configuration does.
func (o DIOrder) String() string {
	if o == LowFirst {
		return "low-first"
	}
	return "high-first"
}

// ParseDIOrder reads "high-first" ("90 1F" on the wire, also "901F" or
// "2004") or "low-first" ("1F 90", "1F90"); "" is the default.
func ParseDIOrder(s string) (DIOrder, error) {
	switch strings.ToLower(strings.ReplaceAll(s, " ", "")) {
	case "", "high-first", "901f", "2004":
		return HighFirst, nil
	case "low-first", "1f90":
		return LowFirst, nil
	}
	return 0, fmt.Errorf("di_order %q: want high-first (90 1F on the wire) or low-first (1F 90)", s)
}

// put writes d in order o.
func (d DI) put(b []byte, o DIOrder) {
	hi, lo := byte(d>>8), byte(d)
	if o == LowFirst {
		hi, lo = lo, hi
	}
	b[0], b[1] = hi, lo
}

// readDI reads the two DI bytes. A known identifier in either order wins;
// an unknown one is read high byte first and its order reported as such.
func readDI(b0, b1 byte) (DI, DIOrder) {
	hf := DI(b0)<<8 | DI(b1)
	lf := DI(b1)<<8 | DI(b0)
	switch {
	case hf.Known():
		return hf, HighFirst
	case lf.Known():
		return lf, LowFirst
	}
	return hf, HighFirst
}

func isBCD(c byte) bool { return c>>4 <= 9 && c&0x0F <= 9 }
