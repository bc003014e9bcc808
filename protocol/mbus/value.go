package mbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// ValueKind tells which field of a Value is meaningful.
type ValueKind uint8

// Value kinds.
const (
	// ValueNone is a record without data (DIF data field 0 or 8).
	ValueNone ValueKind = iota
	// ValueNumber uses Number (scaled) and, for integer and BCD fields, Int.
	ValueNumber
	// ValueDate (type G) has Text "YYYY-MM-DD" and Time if the date exists.
	ValueDate
	// ValueDateTime (types F and I) has Text "YYYY-MM-DDThh:mm:ssZ" in the
	// meter's own clock, Time if the date exists, and SummerTime.
	ValueDateTime
	// ValueTime (type J) has Text "hh:mm:ss".
	ValueTime
	// ValueText is a variable-length string (LVAR 00-BF) in Text.
	ValueText
	// ValueBytes is uninterpreted data in Bytes (manufacturer data, long
	// binary LVAR numbers).
	ValueBytes
)

// Value is a decoded data field.
type Value struct {
	Kind ValueKind
	// Number is the value in the record's Unit (scaled by the VIF).
	Number float64
	// Int is the unscaled integer as sent, for integer and BCD fields.
	Int int64
	// IsInt says Int is valid (the field was an integer or BCD).
	IsInt bool
	// Text holds dates, times and strings.
	Text string
	// Time is the date or date-time as a UTC time, zero if the meter sent
	// a date that does not exist (e.g. month 0). It is the meter's wall
	// clock: the zone it keeps is not on the wire, so the driver places it
	// (with SummerTime to tell the hour that repeats when summer time ends).
	Time time.Time
	// SummerTime is a type F or I date-time's SU bit: the meter's clock
	// shows summer (daylight saving) time.
	SummerTime bool
	// Bytes is a slice of the decoded input (not a copy).
	Bytes []byte
	// Invalid is set when the meter marks the value invalid (IV bit of a
	// date-time) or sends a BCD field with non-decimal digits A-F, which
	// meters use as error markers; such a BCD value is given as Bytes.
	Invalid bool
}

// Number returns a numeric Value, for encoding.
func Number(f float64) Value { return Value{Kind: ValueNumber, Number: f} }

// Text returns a string Value, for encoding.
func Text(s string) Value { return Value{Kind: ValueText, Text: s} }

// Bytes returns a raw-bytes Value, for encoding.
func Bytes(b []byte) Value { return Value{Kind: ValueBytes, Bytes: b} }

// Date returns a type G date Value of t's calendar day, for encoding.
func Date(t time.Time) Value {
	return Value{Kind: ValueDate, Time: t, Text: t.Format("2006-01-02")}
}

// DateTime returns a type F or I date-time Value of t's wall clock in t's
// own location, with the SU bit set where that location keeps summer time
// at t, for encoding.
func DateTime(t time.Time) Value {
	return Value{Kind: ValueDateTime, Time: t, Text: t.Format("2006-01-02T15:04:05Z"), SummerTime: t.IsDST()}
}

// decodeData turns the data field d (already in LSB-first order) into a
// Value according to the DIF coding and the VIB meaning.
func decodeData(coding byte, d []byte, u unitInfo) (Value, error) {
	switch coding {
	case DataNone, DataReadout:
		return Value{Kind: ValueNone}, nil
	case DataReal32:
		f := float64(math.Float32frombits(binary.LittleEndian.Uint32(d)))
		return Value{Kind: ValueNumber, Number: u.apply(f)}, nil
	case DataBCD2, DataBCD4, DataBCD6, DataBCD8, DataBCD12:
		return bcdValue(d, u), nil
	}
	// Integer codings; dates and times are integer fields read bitwise.
	switch u.form {
	case formDate, formDateTime:
		if v, ok := decodeTime(d, u.form); ok {
			return v, nil
		}
	}
	n := intLE(d)
	return Value{Kind: ValueNumber, Int: n, IsInt: true, Number: u.apply(float64(n))}, nil
}

// intLE decodes a little-endian two's complement integer of 1 to 8 bytes.
func intLE(d []byte) int64 {
	var u uint64
	for i := len(d) - 1; i >= 0; i-- {
		u = u<<8 | uint64(d[i])
	}
	shift := 64 - 8*uint(len(d))
	return int64(u<<shift) >> shift
}

// bcdValue decodes a BCD field; non-decimal digits make it an invalid
// value carrying the raw bytes.
func bcdValue(d []byte, u unitInfo) Value {
	n, ok := bcdSigned(d)
	if !ok {
		return Value{Kind: ValueBytes, Bytes: d, Invalid: true}
	}
	return Value{Kind: ValueNumber, Int: n, IsInt: true, Number: u.apply(float64(n))}
}

// bcdSigned decodes LSB-first BCD; a high nibble F in the last byte marks
// a negative number (EN 13757-3 annex A, type A). Other digits A-F are not
// decimal (meters send them as error markers): ok is false.
func bcdSigned(d []byte) (v int64, ok bool) {
	neg := false
	for i := len(d) - 1; i >= 0; i-- {
		hi, lo := int64(d[i]>>4), int64(d[i]&0x0F)
		if i == len(d)-1 && hi == 0xF {
			neg = true
			hi = 0
		}
		if hi > 9 || lo > 9 {
			return 0, false
		}
		v = v*100 + hi*10 + lo
	}
	if neg {
		return -v, true
	}
	return v, true
}

// decodeTime decodes types G (2 bytes), J (3), F (4) and I (6). It
// reports false for other lengths so the caller falls back to a number.
func decodeTime(d []byte, f form) (Value, bool) {
	var year, month, day, hour, min, sec int
	kind := ValueDateTime
	invalid, su := false, false
	switch len(d) {
	case 2: // G
		kind = ValueDate
		day, month = int(d[0]&0x1F), int(d[1]&0x0F)
		year = int(d[0]&0xE0)>>5 | int(d[1]&0xF0)>>1
	case 3: // J
		sec, min, hour = int(d[0]&0x3F), int(d[1]&0x3F), int(d[2]&0x1F)
		var b [8]byte
		return Value{Kind: ValueTime, Text: string(appendClock(b[:0], hour, min, sec))}, true
	case 4: // F
		min, hour = int(d[0]&0x3F), int(d[1]&0x1F)
		invalid = d[0]&0x80 != 0 // IV: the meter says its clock is not set
		su = d[1]&0x80 != 0      // SU: summer time
		day, month = int(d[2]&0x1F), int(d[3]&0x0F)
		year = int(d[2]&0xE0)>>5 | int(d[3]&0xF0)>>1
	case 6: // I
		sec, min, hour = int(d[0]&0x3F), int(d[1]&0x3F), int(d[2]&0x1F)
		su = d[2]&0x80 != 0 // SU: summer time
		day, month = int(d[3]&0x1F), int(d[4]&0x0F)
		year = int(d[3]&0xE0)>>5 | int(d[4]&0xF0)>>1
	default:
		return Value{}, false
	}
	// Two-digit years: 81..99 are 19xx, the rest 20xx (the century bits
	// of newer meters extend the field beyond 99).
	if year <= 80 {
		year += 2000
	} else {
		year += 1900
	}
	var b [20]byte
	s := appendDate(b[:0], year, month, day)
	if kind == ValueDateTime {
		s = append(s, 'T')
		s = appendClock(s, hour, min, sec)
		s = append(s, 'Z')
	}
	v := Value{Kind: kind, Text: string(s), Invalid: invalid, SummerTime: su}
	if month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month) && hour < 24 && min < 60 && sec < 60 {
		v.Time = time.Date(year, time.Month(month), day, hour, min, sec, 0, time.UTC)
	}
	return v, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func appendDate(b []byte, y, m, d int) []byte {
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append(b, byte('0'+m/10%10), byte('0'+m%10), '-')
	return append(b, byte('0'+d/10%10), byte('0'+d%10))
}

func appendClock(b []byte, h, m, s int) []byte {
	return append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+s/10), byte('0'+s%10))
}

// decodeLVAR decodes a variable-length field; lvar is the length byte and
// d the bytes after it (of the length lvarLen returned).
func decodeLVAR(lvar byte, d []byte, u unitInfo) Value {
	switch {
	case lvar <= 0xBF:
		return Value{Kind: ValueText, Text: reversedString(d)}
	case lvar <= 0xC9:
		return bcdValue(d, u)
	case lvar <= 0xD9:
		v := bcdValue(d, u)
		v.Int, v.Number = -v.Int, u.apply(float64(-v.Int))
		return v
	}
	if len(d) >= 1 && len(d) <= 8 {
		n := intLE(d)
		return Value{Kind: ValueNumber, Int: n, IsInt: true, Number: u.apply(float64(n))}
	}
	return Value{Kind: ValueBytes, Bytes: d}
}

// lvarLen is the number of data bytes after an LVAR byte (EN 13757-3
// annex, variable length data).
func lvarLen(lvar byte) (int, error) {
	switch {
	case lvar <= 0xBF:
		return int(lvar), nil
	case lvar <= 0xC9:
		return int(lvar - 0xC0), nil
	case lvar >= 0xD0 && lvar <= 0xD9:
		return int(lvar - 0xD0), nil
	case lvar >= 0xE0 && lvar <= 0xEF:
		return int(lvar - 0xE0), nil
	case lvar >= 0xF0 && lvar <= 0xF4:
		return 4 * int(lvar-0xEC), nil
	case lvar == 0xF5:
		return 48, nil
	case lvar == 0xF6:
		return 64, nil
	}
	return 0, fmt.Errorf("%w: reserved LVAR 0x%02X", ErrBadValue, lvar)
}
