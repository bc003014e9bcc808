package mbus

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Secondary is a meter's secondary address: identification number (8 BCD
// digits), manufacturer code, version and medium, as in the fixed header of
// its answers and in a selection (CI 52).
type Secondary struct {
	ID           uint32 // the 8 decimal digits as a number, 0..99999999
	Manufacturer uint16 // EN 13757-3 packed three-letter code
	Version      byte
	Medium       byte
}

// ManufacturerCode is the three-letter form of Manufacturer.
func (s Secondary) ManufacturerCode() string {
	m := s.Manufacturer
	return string([]byte{byte(m>>10&0x1F) + 64, byte(m>>5&0x1F) + 64, byte(m&0x1F) + 64})
}

// PackManufacturer is the inverse of ManufacturerCode; ok is false for a
// code that is not three letters A–Z.
func PackManufacturer(code string) (uint16, bool) {
	if len(code) != 3 {
		return 0, false
	}
	var m uint16
	for _, c := range []byte(strings.ToUpper(code)) {
		if c < 'A' || c > 'Z' {
			return 0, false
		}
		m = m<<5 | uint16(c-64)
	}
	return m, true
}

// String is the 16-hex-digit form technicians and libmbus use:
// IIIIIIII MMMM VV DD without the spaces.
func (s Secondary) String() string {
	return fmt.Sprintf("%08d%04X%02X%02X", s.ID, s.Manufacturer, s.Version, s.Medium)
}

// Pattern is the selection pattern matching exactly s.
func (s Secondary) Pattern() Pattern {
	p, _ := ParsePattern(s.String())
	return p
}

// Wild is the wildcard nibble of a selection.
const Wild = 0xF

// Pattern is a selection pattern: 16 nibbles, most significant first, id
// digits 0–7 (0–9 or Wild), then manufacturer (4), version (2) and medium
// (2) nibbles, each 0–F where F also matches anything.
type Pattern [16]byte

// AllWild matches every meter.
func AllWild() Pattern {
	var p Pattern
	for i := range p {
		p[i] = Wild
	}
	return p
}

// ParsePattern reads 16 hex digits (F or * as wildcard), or 8 id digits
// with the rest wildcard.
func ParsePattern(txt string) (Pattern, error) {
	txt = strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(txt)), "*", "F")
	if len(txt) == 8 {
		txt += "FFFFFFFF"
	}
	var p Pattern
	if len(txt) != 16 {
		return p, fmt.Errorf("secondary address %q: want 8 or 16 hex digits", txt)
	}
	if _, err := hex.DecodeString(txt); err != nil {
		return p, fmt.Errorf("secondary address %q: %w", txt, err)
	}
	for i := range p {
		c := txt[i]
		if c <= '9' {
			p[i] = c - '0'
		} else {
			p[i] = c - 'A' + 10
		}
		if i < 8 && p[i] > 9 && p[i] != Wild {
			return p, fmt.Errorf("secondary address %q: id digit %c", txt, c)
		}
	}
	return p, nil
}

func (p Pattern) String() string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 16)
	for i, n := range p {
		b[i] = digits[n&0xF]
	}
	return string(b)
}

// Bytes is the selection's 8 data bytes as sent after CI 52: id BCD least
// significant byte first, manufacturer little-endian, version, medium.
func (p Pattern) Bytes() [8]byte {
	var b [8]byte
	for i := range 4 {
		b[i] = p[6-2*i]<<4 | p[7-2*i]
	}
	b[4] = p[10]<<4 | p[11]
	b[5] = p[8]<<4 | p[9]
	b[6] = p[12]<<4 | p[13]
	b[7] = p[14]<<4 | p[15]
	return b
}

// Matches reports whether a meter with address s answers a selection by p.
func (p Pattern) Matches(s Secondary) bool {
	q := s.Pattern()
	for i := range p {
		if p[i] != Wild && p[i] != q[i] {
			return false
		}
	}
	return true
}

func (p Pattern) secondary() Secondary {
	var s Secondary
	for i := range 8 {
		s.ID = s.ID*10 + uint32(p[i])
	}
	s.Manufacturer = uint16(p[8])<<12 | uint16(p[9])<<8 | uint16(p[10])<<4 | uint16(p[11])
	s.Version = p[12]<<4 | p[13]
	s.Medium = p[14]<<4 | p[15]
	return s
}

// headerSecondary reads the identification from a long header (CI 72 and
// the other long-header CIs), ok false when the answer has none.
func headerSecondary(ci byte, data []byte) (Secondary, bool) {
	switch ci {
	case 0x72, 0x76, 0x73, 0x77:
	default:
		return Secondary{}, false
	}
	if len(data) < 8 {
		return Secondary{}, false
	}
	var s Secondary
	for i := 3; i >= 0; i-- {
		hi, lo := data[i]>>4, data[i]&0xF
		if hi > 9 || lo > 9 {
			return Secondary{}, false
		}
		s.ID = s.ID*100 + uint32(hi)*10 + uint32(lo)
	}
	s.Manufacturer = uint16(data[4]) | uint16(data[5])<<8
	s.Version = data[6]
	s.Medium = data[7]
	return s, true
}
