package modbus

import (
	"errors"
	"math"
	"testing"
)

func TestDecodeOrders(t *testing.T) {
	tests := []struct {
		regs []uint16
		typ  Type
		ord  WordOrder
		want float64
	}{
		{[]uint16{0x1234, 0x5678}, Uint32, ABCD, 0x12345678},
		{[]uint16{0x5678, 0x1234}, Uint32, CDAB, 0x12345678},
		{[]uint16{0x3412, 0x7856}, Uint32, BADC, 0x12345678},
		{[]uint16{0x7856, 0x3412}, Uint32, DCBA, 0x12345678},
		{[]uint16{0x3F80, 0x0000}, Float32, ABCD, 1},
		{[]uint16{0x0000, 0x3F80}, Float32, CDAB, 1},
		{[]uint16{0xFFFF}, Int16, ABCD, -1},
		{[]uint16{0xFFFF}, Uint16, ABCD, 65535},
		{[]uint16{0x0100}, Uint16, BADC, 1},
		{[]uint16{0xFFFF, 0xFFFE}, Int32, ABCD, -2},
		{[]uint16{0x0000, 0x0000, 0x0000, 0x0001}, Uint64, ABCD, 1},
		{[]uint16{0x0001, 0x0000, 0x0000, 0x0000}, Uint64, CDAB, 1},
		{[]uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFD}, Int64, ABCD, -3},
		// 1234.5 as float64 = 0x40934A0000000000; Arad stores doubles with words reversed.
		{[]uint16{0x4093, 0x4A00, 0x0000, 0x0000}, Float64, ABCD, 1234.5},
		{[]uint16{0x0000, 0x0000, 0x4A00, 0x4093}, Float64, CDAB, 1234.5},
		{[]uint16{0x1234}, BCD16, ABCD, 1234},
		{[]uint16{0x5678, 0x1234}, BCD32, CDAB, 12345678},
	}
	for _, tt := range tests {
		got, err := Decode(tt.regs, tt.typ, tt.ord)
		if err != nil || got != tt.want {
			t.Errorf("Decode(%04X, %v, %v) = %v, %v; want %v", tt.regs, tt.typ, tt.ord, got, err, tt.want)
		}
		enc, err := Encode(tt.want, tt.typ, tt.ord)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		for i := range enc {
			if enc[i] != tt.regs[i] {
				t.Errorf("Encode(%v, %v, %v) = %04X, want %04X", tt.want, tt.typ, tt.ord, enc, tt.regs)
				break
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode([]uint16{1}, Float32, ABCD); !errors.Is(err, ErrRegisters) {
		t.Errorf("short input: %v, want ErrRegisters", err)
	}
	if _, err := Decode([]uint16{0x12A4}, BCD16, ABCD); !errors.Is(err, ErrBCD) {
		t.Errorf("bad BCD: %v, want ErrBCD", err)
	}
	if _, err := Decode([]uint16{1}, Type(99), ABCD); !errors.Is(err, ErrType) {
		t.Errorf("bad type: %v, want ErrType", err)
	}
	if _, err := ParseType("float"); !errors.Is(err, ErrType) {
		t.Errorf("ParseType(float): %v", err)
	}
	if o, err := ParseWordOrder("cdab"); err != nil || o != CDAB {
		t.Errorf("ParseWordOrder(cdab) = %v, %v", o, err)
	}
}

func TestEncodeSaturates(t *testing.T) {
	r, _ := Encode(-5, Uint16, ABCD)
	if r[0] != 0 {
		t.Errorf("Encode(-5, uint16) = %d, want 0", r[0])
	}
	r, _ = Encode(math.NaN(), Int32, ABCD)
	if r[0] != 0 || r[1] != 0 {
		t.Errorf("Encode(NaN, int32) = %v", r)
	}
}

func TestScale(t *testing.T) {
	tests := []struct {
		s    Scale
		raw  float64
		want float64
	}{
		{Scale{}, 42, 42},
		{Scale{Multiplier: 0.001}, 1500, 1.5},
		{Scale{Exponent: -3}, 1500, 1.5},
		{Scale{Multiplier: 2, Exponent: 1, Offset: -1}, 3, 59},
	}
	for _, tt := range tests {
		got := tt.s.Apply(tt.raw)
		if math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%+v.Apply(%v) = %v, want %v", tt.s, tt.raw, got, tt.want)
		}
		if back := tt.s.Invert(got); math.Abs(back-tt.raw) > 1e-9 {
			t.Errorf("%+v.Invert(%v) = %v, want %v", tt.s, got, back, tt.raw)
		}
	}
}
