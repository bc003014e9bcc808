package mbus

import (
	"encoding/binary"
	"fmt"
)

// CI fields of EN 13757-3 this package decodes.
const (
	// CIError is a slave's general application error answer.
	CIError byte = 0x70
	// CIVariableLong is variable data with the 12-byte long header (mode 1).
	CIVariableLong byte = 0x72
	// CIFixed is the older fixed data structure (mode 1).
	CIFixed byte = 0x73
	// CIVariableLongMode2 is CIVariableLong with multi-byte data MSB first.
	CIVariableLongMode2 byte = 0x76
	// CIFixedMode2 is CIFixed with the counters MSB first.
	CIFixedMode2 byte = 0x77
	// CIVariableNone is variable data without a header.
	CIVariableNone byte = 0x78
	// CIVariableShort is variable data with the 4-byte short header.
	CIVariableShort byte = 0x7A
	// CIVariableShortMode2 is CIVariableShort with data MSB first.
	CIVariableShortMode2 byte = 0x7E
)

// LongHeaderLen and ShortHeaderLen are the sizes of the fixed headers.
const (
	LongHeaderLen  = 12
	ShortHeaderLen = 4
)

// Header is the fixed data header of a variable data telegram. With a short
// header (CI 7A) only AccessNumber, Status and Signature are sent; ID,
// Manufacturer, Version and Medium stay zero and Long is false.
type Header struct {
	// Long says whether the identification fields were present.
	Long bool
	// ID is the 8-digit identification number, sent as BCD. A meter that
	// puts hex digits in it gets them as upper-case letters ("0500023E").
	ID string
	// Manufacturer is the three-letter FLAG code, e.g. "KAM".
	Manufacturer string
	// Version is the manufacturer's generation or version code.
	Version byte
	// Medium is the device type (water, heat, ...).
	Medium Medium
	// AccessNumber counts the slave's responses.
	AccessNumber byte
	// Status holds the application error and alarm bits.
	Status byte
	// Signature is reserved for encryption; 0 when not encrypted.
	Signature uint16
}

// parseLongHeader reads the 12-byte long header at the start of b.
func parseLongHeader(b []byte) (Header, error) {
	if len(b) < LongHeaderLen {
		return Header{}, fmt.Errorf("%w: long header needs %d bytes, have %d", ErrTruncated, LongHeaderLen, len(b))
	}
	h := Header{
		Long:         true,
		ID:           identString(b[0:4]),
		Manufacturer: ManufacturerString(binary.LittleEndian.Uint16(b[4:6])),
		Version:      b[6],
		Medium:       Medium(b[7]),
	}
	h.AccessNumber, h.Status, h.Signature = b[8], b[9], binary.LittleEndian.Uint16(b[10:12])
	return h, nil
}

func parseShortHeader(b []byte) (Header, error) {
	if len(b) < ShortHeaderLen {
		return Header{}, fmt.Errorf("%w: short header needs %d bytes, have %d", ErrTruncated, ShortHeaderLen, len(b))
	}
	return Header{AccessNumber: b[0], Status: b[1], Signature: binary.LittleEndian.Uint16(b[2:4])}, nil
}

// AppendLongHeader appends the 12-byte long header of h (ID as 8 BCD digits).
func AppendLongHeader(dst []byte, h Header) []byte {
	dst = appendIdent(dst, h.ID)
	dst = binary.LittleEndian.AppendUint16(dst, ManufacturerCode(h.Manufacturer))
	dst = append(dst, h.Version, byte(h.Medium), h.AccessNumber, h.Status)
	return binary.LittleEndian.AppendUint16(dst, h.Signature)
}

// ManufacturerString decodes the 2-byte FLAG manufacturer code: three
// letters of 5 bits each, 'A' = 1.
func ManufacturerString(code uint16) string {
	b := []byte{
		byte(code>>10&0x1F) + 64,
		byte(code>>5&0x1F) + 64,
		byte(code&0x1F) + 64,
	}
	return string(b)
}

// ManufacturerCode encodes a three-letter FLAG code; other input gives 0.
func ManufacturerCode(s string) uint16 {
	if len(s) != 3 {
		return 0
	}
	var c uint16
	for i := 0; i < 3; i++ {
		x := s[i]
		if x >= 'a' && x <= 'z' {
			x -= 'a' - 'A'
		}
		if x < 'A' || x > 'Z' {
			return 0
		}
		c = c<<5 | uint16(x-64)
	}
	return c
}

// Medium is the device type byte of the header (EN 13757-3 table 6).
type Medium byte

// Media a water concentrator meets most.
const (
	MediumOther      Medium = 0x00
	MediumElectric   Medium = 0x02
	MediumGas        Medium = 0x03
	MediumHeat       Medium = 0x04
	MediumWarmWater  Medium = 0x06
	MediumWater      Medium = 0x07
	MediumHCA        Medium = 0x08
	MediumCooling    Medium = 0x0A
	MediumColdWater  Medium = 0x16
	MediumDualWater  Medium = 0x17
	MediumWasteWater Medium = 0x28
)

var mediumNames = map[Medium]string{
	0x00: "other", 0x01: "oil", 0x02: "electricity", 0x03: "gas",
	0x04: "heat (outlet)", 0x05: "steam", 0x06: "warm water", 0x07: "water",
	0x08: "heat cost allocator", 0x09: "compressed air", 0x0A: "cooling (outlet)",
	0x0B: "cooling (inlet)", 0x0C: "heat (inlet)", 0x0D: "heat and cooling",
	0x0E: "bus/system component", 0x0F: "unknown", 0x10: "irrigation water",
	0x11: "water data logger", 0x12: "gas data logger", 0x13: "gas converter",
	0x14: "calorific value", 0x15: "hot water", 0x16: "cold water",
	0x17: "dual register water", 0x18: "pressure", 0x19: "A/D converter",
	0x1A: "smoke detector", 0x1B: "room sensor", 0x1C: "gas detector",
	0x20: "breaker (electricity)", 0x21: "valve (gas or water)",
	0x25: "customer unit", 0x28: "waste water", 0x29: "garbage",
	0x31: "communication controller", 0x32: "unidirectional repeater",
	0x33: "bidirectional repeater", 0x36: "radio converter (system side)",
	0x37: "radio converter (meter side)",
}

// String names the medium, or "reserved (0xNN)".
func (m Medium) String() string {
	if s, ok := mediumNames[m]; ok {
		return s
	}
	return "reserved (0x" + hex2(byte(m)) + ")"
}

// identString prints 4 LSB-first BCD bytes as 8 digits, hex digits as is.
func identString(b []byte) string {
	const digits = "0123456789ABCDEF"
	var s [8]byte
	for i := 0; i < 4; i++ {
		x := b[3-i]
		s[2*i], s[2*i+1] = digits[x>>4], digits[x&0x0F]
	}
	return string(s[:])
}

// appendIdent appends an ident of up to 8 hex digits as 4 LSB-first bytes;
// it is right-aligned and non-hex characters count as 0.
func appendIdent(dst []byte, id string) []byte {
	var v uint32
	for i := 0; i < len(id) && i < 8; i++ {
		c := id[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		}
		v = v<<4 | uint32(d)
	}
	return binary.LittleEndian.AppendUint32(dst, v)
}
