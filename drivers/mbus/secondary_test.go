package mbus

import (
	"testing"

	pmbus "tidegate/protocol/mbus"
)

func TestPattern(t *testing.T) {
	for _, tc := range []struct {
		in    string
		bytes [8]byte
		err   bool
	}{
		{in: "12345678", bytes: [8]byte{0x78, 0x56, 0x34, 0x12, 0xFF, 0xFF, 0xFF, 0xFF}},
		{in: "123456782C2D1B07", bytes: [8]byte{0x78, 0x56, 0x34, 0x12, 0x2D, 0x2C, 0x1B, 0x07}},
		{in: "1234****2c2dFF07", bytes: [8]byte{0xFF, 0xFF, 0x34, 0x12, 0x2D, 0x2C, 0xFF, 0x07}},
		{in: "1234A678", err: true},   // hex letter in the id
		{in: "1234567", err: true},    // too short
		{in: "12345678XX", err: true}, // neither 8 nor 16
		{in: "123456782C2D1B0G", err: true},
	} {
		p, err := ParsePattern(tc.in)
		if (err != nil) != tc.err {
			t.Fatalf("%q: err %v", tc.in, err)
		}
		if err == nil && p.Bytes() != tc.bytes {
			t.Fatalf("%q: bytes % X, want % X", tc.in, p.Bytes(), tc.bytes)
		}
	}
	s, err := parseSecondary("123456782C2D1B07")
	if err != nil || s != (Secondary{ID: 12345678, Manufacturer: 0x2C2D, Version: 0x1B, Medium: 7}) || s.ManufacturerCode() != "KAM" {
		t.Fatalf("%+v %v", s, err)
	}
	if m, ok := PackManufacturer("kam"); !ok || m != 0x2C2D || pmbus.ManufacturerString(m) != "KAM" {
		t.Fatalf("PackManufacturer: %04X %v", m, ok)
	}
	if !AllWild().Matches(s) || !s.Pattern().Matches(s) {
		t.Fatal("pattern does not match its own meter")
	}
	other := s
	other.Version = 0x1C
	if s.Pattern().Matches(other) {
		t.Fatal("full pattern matches another version")
	}
}

// FuzzHeaderSecondary feeds answers' user data to the identification
// reader and the multi-telegram check: no panic, and what is read back
// prints and parses to itself.
func FuzzHeaderSecondary(f *testing.F) {
	f.Add(byte(0x72), []byte{0x78, 0x56, 0x34, 0x12, 0x2D, 0x2C, 0x1B, 0x07, 0, 0, 0, 0, 0x04, 0x13, 1, 2, 3, 4, 0x1F})
	f.Add(byte(0x78), []byte{0x0D, 0x13, 0xC3, 1, 2, 3})
	f.Add(byte(0x72), []byte{0x9A, 0x56})
	f.Fuzz(func(t *testing.T, ci byte, data []byte) {
		_ = Telegram{CI: ci, Data: data}.MoreFollow()
		s, ok := headerSecondary(ci, data)
		if !ok {
			return
		}
		back, err := parseSecondary(s.String())
		if err != nil || back != s {
			t.Fatalf("%v round trip: %v %v", s, back, err)
		}
	})
}

// FuzzParsePattern: any text either fails or round-trips through String.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"12345678", "1234****2C2DFF07", "", "FFFFFFFFFFFFFFFF", "1234A678"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePattern(s)
		if err != nil {
			return
		}
		q, err := ParsePattern(p.String())
		if err != nil || q != p {
			t.Fatalf("%q → %v → %v %v", s, p, q, err)
		}
	})
}

// parseSecondary reads a full 16-hex-digit secondary address.
func parseSecondary(txt string) (Secondary, error) {
	p, err := ParsePattern(txt)
	return p.secondary(), err
}
