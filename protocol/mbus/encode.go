package mbus

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AppendRecord appends the wire form of r: its DIB and VIB as given, then
// r.Value encoded as the DIB's data field with the VIB's scale. Records of
// FuncManufacturer and FuncMoreRecords are DIF 0F/1F and Value.Bytes. It is
// the inverse of ParseRecords for mode 1 (LSB first) telegrams.
func AppendRecord(dst []byte, r Record) ([]byte, error) {
	switch r.Function {
	case FuncManufacturer:
		return append(append(dst, DIFManufacturer), r.Value.Bytes...), nil
	case FuncMoreRecords:
		return append(append(dst, DIFMoreRecords), r.Value.Bytes...), nil
	}
	d, n, err := parseDIB(r.DIB)
	if err != nil || n != len(r.DIB) {
		return dst, fmt.Errorf("mbus: bad DIB % X: %v", r.DIB, err)
	}
	if d.coding == DataSpecial {
		return dst, fmt.Errorf("mbus: DIF 0x%02X has no data field to encode", r.DIB[0])
	}
	v, m, err := parseVIB(r.VIB)
	if err != nil || m != len(r.VIB) {
		return dst, fmt.Errorf("mbus: bad VIB % X: %v", r.VIB, err)
	}
	dst = append(dst, r.DIB...)
	dst = append(dst, r.VIB...)
	val := r.Value
	switch d.coding {
	case DataNone, DataReadout:
		return dst, nil
	case DataVar:
		switch val.Kind {
		case ValueText:
			if len(val.Text) > 0xBF {
				return dst, fmt.Errorf("%w: text of %d bytes, max 191", ErrTooLong, len(val.Text))
			}
			dst = append(dst, byte(len(val.Text)))
			for i := len(val.Text) - 1; i >= 0; i-- {
				dst = append(dst, val.Text[i])
			}
			return dst, nil
		case ValueNumber:
			raw := rawInt(val, v.info)
			return binary.LittleEndian.AppendUint64(append(dst, 0xE8), uint64(raw)), nil
		}
		return dst, fmt.Errorf("mbus: cannot encode %v value as LVAR", val.Kind)
	case DataReal32:
		f := float32(v.info.unapply(val.Number))
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(f)), nil
	case DataBCD2, DataBCD4, DataBCD6, DataBCD8, DataBCD12:
		return appendBCDSigned(dst, rawInt(val, v.info), dataLen[d.coding])
	}
	l := dataLen[d.coding]
	switch val.Kind {
	case ValueDate, ValueDateTime, ValueTime:
		b, err := encodeTime(val, l)
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
	raw := uint64(rawInt(val, v.info))
	for i := 0; i < l; i++ {
		dst = append(dst, byte(raw>>(8*i)))
	}
	return dst, nil
}

// rawInt is the integer to send for a numeric value: Int if the caller set
// it, else Number unscaled and rounded.
func rawInt(v Value, u unitInfo) int64 {
	if v.IsInt {
		return v.Int
	}
	return int64(math.Round(u.unapply(v.Number)))
}

// appendBCD appends v as n bytes of LSB-first BCD (v modulo 10^(2n)).
func appendBCD(dst []byte, v uint64, n int) []byte {
	for i := 0; i < n; i++ {
		lo := v % 10
		v /= 10
		hi := v % 10
		v /= 10
		dst = append(dst, byte(hi<<4|lo))
	}
	return dst
}

func appendBCDSigned(dst []byte, v int64, n int) ([]byte, error) {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	max := uint64(1)
	for i := 0; i < 2*n; i++ {
		max *= 10
	}
	if neg {
		max /= 10 // the top nibble holds the sign
	}
	if u >= max {
		return dst, fmt.Errorf("%w: %d does not fit %d BCD digits", ErrBadValue, v, 2*n)
	}
	start := len(dst)
	dst = appendBCD(dst, u, n)
	if neg {
		dst[start+n-1] |= 0xF0
	}
	return dst, nil
}

// encodeTime encodes a date/time Value as type G (2), J (3), F (4) or I (6)
// from its Text, so that dates that do not exist (month 0) round-trip.
func encodeTime(v Value, l int) ([]byte, error) {
	var y, mo, d, h, mi, s int
	txt := v.Text
	if txt == "" && !v.Time.IsZero() {
		txt = v.Time.UTC().Format("2006-01-02T15:04:05Z")
	}
	if v.Kind == ValueTime {
		if _, err := fmt.Sscanf(txt, "%2d:%2d:%2d", &h, &mi, &s); err != nil {
			return nil, fmt.Errorf("%w: time %q", ErrBadValue, txt)
		}
	} else {
		if _, err := fmt.Sscanf(txt, "%4d-%2d-%2d", &y, &mo, &d); err != nil {
			return nil, fmt.Errorf("%w: date %q", ErrBadValue, txt)
		}
		if len(txt) >= 19 {
			if _, err := fmt.Sscanf(txt[11:19], "%2d:%2d:%2d", &h, &mi, &s); err != nil {
				return nil, fmt.Errorf("%w: date-time %q", ErrBadValue, txt)
			}
		}
	}
	// Two-digit years: the decoder reads 81-99 as 19xx and 00-80 as 20xx.
	if v.Kind != ValueTime && (y < 1981 || y > 2080) {
		return nil, fmt.Errorf("%w: year %d outside 1981-2080", ErrBadValue, y)
	}
	yy := y % 100
	yl, yh := byte(yy&0x07)<<5, byte(yy>>3)<<4
	var su byte
	if v.SummerTime {
		su = 0x80
	}
	switch l {
	case 2:
		return []byte{yl | byte(d), yh | byte(mo)}, nil
	case 3:
		return []byte{byte(s), byte(mi), byte(h)}, nil
	case 4:
		return []byte{byte(mi), byte(h) | su, yl | byte(d), yh | byte(mo)}, nil
	case 6:
		return []byte{byte(s), byte(mi), byte(h) | su, yl | byte(d), yh | byte(mo), 0}, nil
	}
	return nil, fmt.Errorf("%w: no date/time type has %d bytes", ErrBadValue, l)
}

// AppendRecords appends every record of rs in order.
func AppendRecords(dst []byte, rs []Record) ([]byte, error) {
	for i, r := range rs {
		var err error
		if dst, err = AppendRecord(dst, r); err != nil {
			return dst, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return dst, nil
}

// EncodeRspUd builds a complete RSP_UD long frame with CI 72 (long header)
// from a header and records. acd sets the access demand bit (class 1 data
// waiting); a record of FuncMoreRecords last says another telegram follows.
func EncodeRspUd(addr byte, acd bool, h Header, rs []Record) ([]byte, error) {
	data := AppendLongHeader(make([]byte, 0, 128), h)
	data, err := AppendRecords(data, rs)
	if err != nil {
		return nil, err
	}
	c := CRspUd
	if acd {
		c |= ACD
	}
	return Encode(Frame{Kind: KindLong, C: CField(c), Address: addr, CI: CIVariableLong, Data: data})
}
