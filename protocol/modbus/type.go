package modbus

import "fmt"

// Type is how a value is laid out in registers.
type Type uint8

const (
	Uint16 Type = iota + 1
	Int16
	Uint32
	Int32
	Uint64
	Int64
	Float32
	Float64
	BCD16 // 4 packed BCD digits in one register
	BCD32 // 8 packed BCD digits in two registers
)

var typeNames = map[Type]string{
	Uint16: "uint16", Int16: "int16", Uint32: "uint32", Int32: "int32", Uint64: "uint64", Int64: "int64",
	Float32: "float32", Float64: "float64", BCD16: "bcd16", BCD32: "bcd32",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType turns a profile's type name into a Type.
func ParseType(s string) (Type, error) {
	for t, n := range typeNames {
		if n == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w %q (want uint16, int16, uint32, int32, uint64, int64, float32, float64, bcd16 or bcd32)", ErrType, s)
}

// Registers is how many 16-bit registers a value of type t occupies.
func (t Type) Registers() int {
	switch t {
	case Uint16, Int16, BCD16:
		return 1
	case Uint32, Int32, Float32, BCD32:
		return 2
	case Uint64, Int64, Float64:
		return 4
	}
	return 0
}

// WordOrder names the byte order of a multi-register value, A being the most
// significant byte. Vendors differ; it is a property of a profile's register.
type WordOrder uint8

const (
	ABCD WordOrder = iota // big-endian words, big-endian bytes (the Modbus default)
	CDAB                  // low word first, big-endian bytes (TUF-2000M, many meters)
	BADC                  // big-endian words, bytes swapped in each word
	DCBA                  // fully little-endian
)

var orderNames = [...]string{"ABCD", "CDAB", "BADC", "DCBA"}

func (o WordOrder) String() string {
	if int(o) < len(orderNames) {
		return orderNames[o]
	}
	return fmt.Sprintf("WordOrder(%d)", uint8(o))
}

// ParseWordOrder accepts ABCD, CDAB, BADC, DCBA (any case).
func ParseWordOrder(s string) (WordOrder, error) {
	for i, n := range orderNames {
		if equalFold(n, s) {
			return WordOrder(i), nil
		}
	}
	return 0, fmt.Errorf("%w word order %q (want ABCD, CDAB, BADC or DCBA)", ErrType, s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Orders lists the four word orders, for `read --raw`.
func Orders() []WordOrder { return []WordOrder{ABCD, CDAB, BADC, DCBA} }
