package mbus

import (
	"encoding/binary"
	"fmt"
)

// FixedLen is the size of the fixed data structure after CI 73/77.
const FixedLen = 16

// fixedUnit is the unit table of the fixed data structure (EN 13757-3
// annex, inherited from EN 1434-3): 6-bit codes, mostly decades of a unit.
func fixedUnit(code byte) (unitInfo, bool) {
	switch {
	case code == 0x00:
		return unitInfo{quantity: "time (h,m,s)"}, true
	case code == 0x01:
		return unitInfo{quantity: "date (D,M,Y)"}, true
	case code >= 0x02 && code <= 0x0A: // Wh .. 100 MWh
		return unitInfo{quantity: "energy", unit: "Wh", exp: int(code - 0x02)}, true
	case code >= 0x0B && code <= 0x13: // kJ .. 100 GJ
		return unitInfo{quantity: "energy", unit: "J", exp: 3 + int(code-0x0B)}, true
	case code >= 0x14 && code <= 0x1C: // W .. 100 MW
		return unitInfo{quantity: "power", unit: "W", exp: int(code - 0x14)}, true
	case code >= 0x1D && code <= 0x25: // kJ/h .. 100 GJ/h
		return unitInfo{quantity: "power", unit: "J/h", exp: 3 + int(code-0x1D)}, true
	case code >= 0x26 && code <= 0x2E: // ml .. 100 m3
		return unitInfo{quantity: "volume", unit: "m3", exp: -6 + int(code-0x26)}, true
	case code >= 0x2F && code <= 0x37: // ml/h .. 100 m3/h
		return unitInfo{quantity: "volume flow", unit: "m3/h", exp: -6 + int(code-0x2F)}, true
	case code >= 0x38 && code <= 0x3A:
		return unitInfo{quantity: "temperature", unit: "degC", exp: -3 + int(code-0x38)}, true
	case code == 0x3B:
		return unitInfo{quantity: "heat cost allocation", unit: "HCA"}, true
	}
	return unitInfo{quantity: fmt.Sprintf("reserved fixed unit 0x%02X", code)}, false
}

// parseFixed decodes the fixed data structure: ident (BCD), access number,
// status, medium and units, two 4-byte counters. Status bit 7 says the
// counters are binary rather than BCD; bit 6 that counter 1 is a stored
// (historic) value. Unit code 3E for counter 2 means "the unit of counter 1,
// historic value".
func parseFixed(ci byte, data []byte) (Telegram, error) {
	t := Telegram{CI: ci}
	if len(data) < FixedLen {
		return t, fmt.Errorf("%w: fixed data structure needs %d bytes, have %d", ErrTruncated, FixedLen, len(data))
	}
	status := data[5]
	t.Header = Header{ID: identString(data[0:4]), AccessNumber: data[4], Status: status,
		Medium: fixedMedium(data[6]>>6 | data[7]>>6<<2)}
	binaryCounters := status&0x80 != 0
	unit1, unit2 := data[6]&0x3F, data[7]&0x3F
	u1, _ := fixedUnit(unit1)
	storage1 := uint64(status >> 6 & 1)
	for k, code := range []byte{unit1, unit2} {
		u, storage := u1, storage1
		if k == 1 {
			if code == 0x3E {
				storage = 1
			} else {
				u, _ = fixedUnit(code)
				storage = 0
			}
		}
		field := append([]byte(nil), data[8+4*k:12+4*k]...)
		if ci == CIFixedMode2 {
			field[0], field[1], field[2], field[3] = field[3], field[2], field[1], field[0]
		}
		var v Value
		if binaryCounters {
			n := int64(binary.LittleEndian.Uint32(field))
			v = Value{Kind: ValueNumber, Int: n, IsInt: true, Number: u.apply(float64(n))}
		} else {
			v = bcdValue(field, u)
		}
		t.Records = append(t.Records, Record{
			Storage:  storage,
			Quantity: u.quantity, Unit: u.unit, Value: v,
		})
	}
	return t, nil
}

// fixedMedium maps the 4-bit medium of the fixed structure to the device
// type of the variable structure; codes 0-F coincide.
func fixedMedium(m byte) Medium { return Medium(m & 0x0F) }
