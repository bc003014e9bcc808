package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
)

// canonical returns the registers' bytes rearranged into ABCD (big-endian)
// order, so that every type decodes from one layout.
func canonical(dst []byte, regs []uint16, o WordOrder) []byte {
	n := len(regs)
	dst = dst[:2*n]
	for i, r := range regs {
		j := i
		if o == CDAB || o == DCBA {
			j = n - 1 - i
		}
		hi, lo := byte(r>>8), byte(r)
		if o == BADC || o == DCBA {
			hi, lo = lo, hi
		}
		dst[2*j], dst[2*j+1] = hi, lo
	}
	return dst
}

// fromCanonical is the inverse of canonical.
func fromCanonical(b []byte, o WordOrder) []uint16 {
	n := len(b) / 2
	regs := make([]uint16, n)
	for j := 0; j < n; j++ {
		hi, lo := b[2*j], b[2*j+1]
		if o == BADC || o == DCBA {
			hi, lo = lo, hi
		}
		i := j
		if o == CDAB || o == DCBA {
			i = n - 1 - j
		}
		regs[i] = uint16(hi)<<8 | uint16(lo)
	}
	return regs
}

// Decode reads one value of type t from the first t.Registers() registers.
func Decode(regs []uint16, t Type, o WordOrder) (float64, error) {
	n := t.Registers()
	if n == 0 {
		return 0, fmt.Errorf("%w %v", ErrType, t)
	}
	if len(regs) < n {
		return 0, fmt.Errorf("%w: %v needs %d, have %d", ErrRegisters, t, n, len(regs))
	}
	var buf [8]byte
	b := canonical(buf[:], regs[:n], o)
	switch t {
	case Uint16:
		return float64(binary.BigEndian.Uint16(b)), nil
	case Int16:
		return float64(int16(binary.BigEndian.Uint16(b))), nil
	case Uint32:
		return float64(binary.BigEndian.Uint32(b)), nil
	case Int32:
		return float64(int32(binary.BigEndian.Uint32(b))), nil
	case Uint64:
		return float64(binary.BigEndian.Uint64(b)), nil
	case Int64:
		return float64(int64(binary.BigEndian.Uint64(b))), nil
	case Float32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case Float64:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case BCD16, BCD32:
		return decodeBCD(b)
	}
	return 0, fmt.Errorf("%w %v", ErrType, t)
}

func decodeBCD(b []byte) (float64, error) {
	var v uint64
	for _, x := range b {
		hi, lo := x>>4, x&0x0F
		if hi > 9 || lo > 9 {
			return 0, fmt.Errorf("%w: byte 0x%02X", ErrBCD, x)
		}
		v = v*100 + uint64(hi)*10 + uint64(lo)
	}
	return float64(v), nil
}

// Encode lays v out as registers of type t in word order o; the inverse of
// Decode. Integers are rounded and saturate at the type's range; BCD takes
// the magnitude and keeps the low digits.
func Encode(v float64, t Type, o WordOrder) ([]uint16, error) {
	n := t.Registers()
	if n == 0 {
		return nil, fmt.Errorf("%w %v", ErrType, t)
	}
	var b [8]byte
	switch t {
	case Uint16:
		binary.BigEndian.PutUint16(b[:], uint16(clamp(v, 0, math.MaxUint16)))
	case Int16:
		binary.BigEndian.PutUint16(b[:], uint16(int16(clamp(v, math.MinInt16, math.MaxInt16))))
	case Uint32:
		binary.BigEndian.PutUint32(b[:], uint32(clamp(v, 0, math.MaxUint32)))
	case Int32:
		binary.BigEndian.PutUint32(b[:], uint32(int32(clamp(v, math.MinInt32, math.MaxInt32))))
	case Uint64:
		binary.BigEndian.PutUint64(b[:], uint64(clamp(v, 0, math.MaxUint64)))
	case Int64:
		binary.BigEndian.PutUint64(b[:], uint64(int64(clamp(v, math.MinInt64, math.MaxInt64))))
	case Float32:
		binary.BigEndian.PutUint32(b[:], math.Float32bits(float32(v)))
	case Float64:
		binary.BigEndian.PutUint64(b[:], math.Float64bits(v))
	case BCD16, BCD32:
		x := uint64(math.Round(math.Abs(v)))
		for i := 2*n - 1; i >= 0; i-- {
			b[i] = byte(x%10) | byte(x/10%10)<<4
			x /= 100
		}
	}
	return fromCanonical(b[:2*n], o), nil
}

func clamp(v, lo, hi float64) float64 {
	v = math.Round(v)
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(lo, math.Min(hi, v))
}
