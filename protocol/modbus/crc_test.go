package modbus

import "testing"

func TestCRC16(t *testing.T) {
	tests := []struct {
		in   []byte
		want uint16
	}{
		// Examples from the Modbus over serial line guide and common captures.
		{[]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A}, 0xCDC5},
		{[]byte{0x11, 0x03, 0x00, 0x6B, 0x00, 0x03}, 0x8776},
		{[]byte("123456789"), 0x4B37}, // CRC-16/MODBUS check value
	}
	for _, tt := range tests {
		if got := CRC16(tt.in); got != tt.want {
			t.Errorf("CRC16(% X) = 0x%04X, want 0x%04X", tt.in, got, tt.want)
		}
		f := AppendCRC(append([]byte(nil), tt.in...))
		if !CheckCRC(f) {
			t.Errorf("CheckCRC(% X) = false", f)
		}
		f[len(f)-1] ^= 1
		if CheckCRC(f) {
			t.Errorf("CheckCRC accepted a corrupted frame % X", f)
		}
	}
}
