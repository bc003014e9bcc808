package mbus

import (
	"fmt"
	"math"
)

// Special VIF values (with the extension bit clear).
const (
	// VIFExtFB selects the second extension table (VIFE follows).
	VIFExtFB byte = 0x7B
	// VIFPlainText says the unit follows as a length-prefixed ASCII string.
	VIFPlainText byte = 0x7C
	// VIFExtFD selects the first extension table (VIFE follows).
	VIFExtFD byte = 0x7D
	// VIFAny is a master's readout request for any VIF.
	VIFAny byte = 0x7E
	// VIFManufacturer says the record's meaning is manufacturer specific.
	VIFManufacturer byte = 0x7F
)

// form is how a data field is turned into a value.
type form uint8

const (
	_ form = iota // a number: the zero value
	// formDate is a date (type G), or a date-time if the field is longer.
	formDate
	// formDateTime is type F (32 bit), I (48 bit) or J (24 bit, time only).
	formDateTime
)

// unitInfo is the meaning of a VIB: value = raw·mul·10^exp + offset.
type unitInfo struct {
	quantity string
	unit     string
	exp      int
	mul      float64 // 0 means 1
	offset   float64
	form     form
}

// durations of the nn field of time VIFs: seconds, minutes, hours, days.
var durations = [4]float64{1, 60, 3600, 86400}

// primaryVIF is EN 13757-3 table 14 (primary VIF codes), v without the
// extension bit. Units are scaled to tidegate's base units.
func primaryVIF(v byte) unitInfo {
	n := int(v & 0x07)
	nn := int(v & 0x03)
	switch {
	case v <= 0x07:
		return unitInfo{quantity: "energy", unit: "Wh", exp: n - 3}
	case v <= 0x0F:
		return unitInfo{quantity: "energy", unit: "J", exp: n}
	case v <= 0x17:
		return unitInfo{quantity: "volume", unit: "m3", exp: n - 6}
	case v <= 0x1F:
		return unitInfo{quantity: "mass", unit: "kg", exp: n - 3}
	case v <= 0x23:
		return unitInfo{quantity: "on time", unit: "s", mul: durations[nn]}
	case v <= 0x27:
		return unitInfo{quantity: "operating time", unit: "s", mul: durations[nn]}
	case v <= 0x2F:
		return unitInfo{quantity: "power", unit: "W", exp: n - 3}
	case v <= 0x37:
		return unitInfo{quantity: "power", unit: "J/h", exp: n}
	case v <= 0x3F:
		return unitInfo{quantity: "volume flow", unit: "m3/h", exp: n - 6}
	case v <= 0x47: // m3/min, expressed in m3/h
		return unitInfo{quantity: "volume flow", unit: "m3/h", exp: n - 7, mul: 60}
	case v <= 0x4F: // m3/s, expressed in m3/h
		return unitInfo{quantity: "volume flow", unit: "m3/h", exp: n - 9, mul: 3600}
	case v <= 0x57:
		return unitInfo{quantity: "mass flow", unit: "kg/h", exp: n - 3}
	case v <= 0x5B:
		return unitInfo{quantity: "flow temperature", unit: "degC", exp: nn - 3}
	case v <= 0x5F:
		return unitInfo{quantity: "return temperature", unit: "degC", exp: nn - 3}
	case v <= 0x63:
		return unitInfo{quantity: "temperature difference", unit: "K", exp: nn - 3}
	case v <= 0x67:
		return unitInfo{quantity: "external temperature", unit: "degC", exp: nn - 3}
	case v <= 0x6B:
		return unitInfo{quantity: "pressure", unit: "bar", exp: nn - 3}
	case v == 0x6C:
		return unitInfo{quantity: "date", form: formDate}
	case v == 0x6D:
		return unitInfo{quantity: "date and time", form: formDateTime}
	case v == 0x6E:
		return unitInfo{quantity: "heat cost allocation", unit: "HCA"}
	case v == 0x6F:
		return unitInfo{quantity: "reserved VIF 0x6F"}
	case v <= 0x73:
		return unitInfo{quantity: "averaging duration", unit: "s", mul: durations[nn]}
	case v <= 0x77:
		return unitInfo{quantity: "actuality duration", unit: "s", mul: durations[nn]}
	case v == 0x78:
		return unitInfo{quantity: "fabrication number"}
	case v == 0x79:
		return unitInfo{quantity: "enhanced identification"}
	case v == 0x7A:
		return unitInfo{quantity: "bus address"}
	case v == VIFAny:
		return unitInfo{quantity: "any VIF"}
	}
	return unitInfo{quantity: "manufacturer specific"}
}

// vib is a decoded value information block.
type vib struct {
	raw  []byte
	info unitInfo
	// plainText is set for VIF 7C/FC: the unit as the meter spells it.
	plainText bool
}

// parseVIB reads VIF, the FB/FD code, a plain-text unit and VIFEs at b[0:].
func parseVIB(b []byte) (vib, int, error) {
	if len(b) == 0 {
		return vib{}, 0, fmt.Errorf("%w: missing VIF", ErrTruncated)
	}
	vif := b[0]
	n := 1
	ext := vif&0x80 != 0
	var v vib
	// manufacturer: the following VIFEs have no standard meaning.
	manufacturer := false
	vifes := 0
	switch vif & 0x7F {
	case VIFExtFB, VIFExtFD:
		if !ext {
			// The extension code that gives the meaning is missing; the
			// data field is still there, so the record can be skipped.
			v.info = unitInfo{quantity: fmt.Sprintf("VIF 0x%02X without extension code", vif)}
			break
		}
		if n >= len(b) {
			return vib{}, 0, fmt.Errorf("%w: VIFE after VIF 0x%02X missing", ErrTruncated, vif)
		}
		code := b[n]
		n++
		vifes++
		if vif&0x7F == VIFExtFD {
			v.info = extFD(code & 0x7F)
		} else {
			v.info = extFB(code & 0x7F)
		}
		ext = code&0x80 != 0
	case VIFPlainText:
		if n >= len(b) {
			return vib{}, 0, fmt.Errorf("%w: plain-text unit length missing", ErrTruncated)
		}
		l := int(b[n])
		n++
		if n+l > len(b) {
			return vib{}, 0, fmt.Errorf("%w: plain-text unit of %d bytes, %d left", ErrTruncated, l, len(b)-n)
		}
		v.plainText = true
		v.info = unitInfo{quantity: "plain text unit", unit: reversedString(b[n : n+l])}
		n += l
	case VIFManufacturer:
		manufacturer = true
		v.info = unitInfo{quantity: "manufacturer specific"}
	default:
		v.info = primaryVIF(vif & 0x7F)
	}
	for ext {
		if vifes == MaxExtensions {
			return vib{}, 0, fmt.Errorf("%w: more than %d VIFEs", ErrTooManyExtensions, MaxExtensions)
		}
		if n >= len(b) {
			return vib{}, 0, fmt.Errorf("%w: VIFE %d missing", ErrTruncated, vifes+1)
		}
		e := b[n]
		n++
		vifes++
		ext = e&0x80 != 0
		if manufacturer {
			continue
		}
		if e&0x7F == 0x7F {
			manufacturer = true
			continue
		}
		applyOrthogonal(&v.info, e&0x7F)
	}
	v.raw = b[:n]
	return v, n, nil
}

// reversedString returns the ASCII of b in reverse: plain-text units and
// LVAR strings are sent last character first (mode 1, LSB first).
func reversedString(b []byte) string {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return string(r)
}

// scale returns mul·10^exp, computing negative powers by division so that
// decimal fractions come out as the nearest float64 (54321/1000 = 54.321).
func (u unitInfo) apply(raw float64) float64 {
	v := raw
	if u.mul != 0 {
		v *= u.mul
	}
	if u.exp >= 0 {
		v *= math.Pow10(u.exp)
	} else {
		v /= math.Pow10(-u.exp)
	}
	return v + u.offset
}

// unapply is the inverse of apply, for encoding.
func (u unitInfo) unapply(v float64) float64 {
	v -= u.offset
	if u.exp >= 0 {
		v /= math.Pow10(u.exp)
	} else {
		v *= math.Pow10(-u.exp)
	}
	if u.mul != 0 {
		v /= u.mul
	}
	return v
}
