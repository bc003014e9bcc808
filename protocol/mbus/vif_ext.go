package mbus

import "fmt"

// calendar units of the FD table that cannot be expressed in seconds.
var longDurations = [4]string{"h", "d", "month", "year"}

// extFD is EN 13757-3 table 14 "main VIFE-code extension table" (after VIF
// FD), c without the extension bit.
func extFD(c byte) unitInfo {
	nn := int(c & 0x03)
	switch {
	case c <= 0x03:
		return unitInfo{quantity: "credit", unit: "currency units", exp: nn - 3}
	case c <= 0x07:
		return unitInfo{quantity: "debit", unit: "currency units", exp: nn - 3}
	case c >= 0x24 && c <= 0x27:
		return unitInfo{quantity: "storage interval", unit: "s", mul: durations[nn]}
	case c == 0x28:
		return unitInfo{quantity: "storage interval", unit: "month"}
	case c == 0x29:
		return unitInfo{quantity: "storage interval", unit: "year"}
	case c >= 0x2C && c <= 0x2F:
		return unitInfo{quantity: "duration since last readout", unit: "s", mul: durations[nn]}
	case c == 0x30:
		return unitInfo{quantity: "start of tariff", form: formDateTime}
	case c >= 0x31 && c <= 0x33:
		return unitInfo{quantity: "duration of tariff", unit: "s", mul: durations[nn]}
	case c >= 0x34 && c <= 0x37:
		return unitInfo{quantity: "period of tariff", unit: "s", mul: durations[nn]}
	case c == 0x38:
		return unitInfo{quantity: "period of tariff", unit: "month"}
	case c == 0x39:
		return unitInfo{quantity: "period of tariff", unit: "year"}
	case c >= 0x40 && c <= 0x4F:
		return unitInfo{quantity: "voltage", unit: "V", exp: int(c&0x0F) - 9}
	case c >= 0x50 && c <= 0x5F:
		return unitInfo{quantity: "current", unit: "A", exp: int(c&0x0F) - 12}
	case c >= 0x68 && c <= 0x6B:
		return longDuration("duration since last cumulation", nn)
	case c >= 0x6C && c <= 0x6F:
		return longDuration("operating time battery", nn)
	}
	if q, ok := fdNames[c]; ok {
		return q
	}
	return unitInfo{quantity: fmt.Sprintf("reserved FD extension 0x%02X", c)}
}

func longDuration(q string, pp int) unitInfo {
	switch pp {
	case 0:
		return unitInfo{quantity: q, unit: "s", mul: 3600}
	case 1:
		return unitInfo{quantity: q, unit: "s", mul: 86400}
	}
	return unitInfo{quantity: q, unit: longDurations[pp]}
}

var fdNames = map[byte]unitInfo{
	0x08: {quantity: "access number"},
	0x09: {quantity: "medium"},
	0x0A: {quantity: "manufacturer"},
	0x0B: {quantity: "parameter set identification"},
	0x0C: {quantity: "model/version"},
	0x0D: {quantity: "hardware version"},
	0x0E: {quantity: "firmware version"},
	0x0F: {quantity: "software version"},
	0x10: {quantity: "customer location"},
	0x11: {quantity: "customer"},
	0x12: {quantity: "access code user"},
	0x13: {quantity: "access code operator"},
	0x14: {quantity: "access code system operator"},
	0x15: {quantity: "access code developer"},
	0x16: {quantity: "password"},
	0x17: {quantity: "error flags"},
	0x18: {quantity: "error mask"},
	0x1A: {quantity: "digital output"},
	0x1B: {quantity: "digital input"},
	0x1C: {quantity: "baud rate", unit: "Bd"},
	0x1D: {quantity: "response delay time", unit: "bit times"},
	0x1E: {quantity: "retry"},
	0x1F: {quantity: "remote control"},
	0x20: {quantity: "first storage number for cyclic storage"},
	0x21: {quantity: "last storage number for cyclic storage"},
	0x22: {quantity: "size of storage block"},
	0x3A: {quantity: "dimensionless"},
	0x60: {quantity: "reset counter"},
	0x61: {quantity: "cumulation counter"},
	0x62: {quantity: "control signal"},
	0x63: {quantity: "day of week"},
	0x64: {quantity: "week number"},
	0x65: {quantity: "time point of day change"},
	0x66: {quantity: "state of parameter activation"},
	0x67: {quantity: "special supplier information"},
	0x70: {quantity: "date and time of battery change", form: formDateTime},
	0x71: {quantity: "RF level", unit: "dBm"},
	0x74: {quantity: "remaining battery life time", unit: "s", mul: 86400},
	0x75: {quantity: "number of times the meter was stopped"},
	0x76: {quantity: "manufacturer specific data container"},
}

// extFB is EN 13757-3 table 15 "alternate VIFE-code extension table"
// (after VIF FB), c without the extension bit.
func extFB(c byte) unitInfo {
	n := int(c & 0x01)
	nn := int(c & 0x03)
	switch {
	case c <= 0x01: // MWh
		return unitInfo{quantity: "energy", unit: "Wh", exp: n + 5}
	case c == 0x08 || c == 0x09: // GJ
		return unitInfo{quantity: "energy", unit: "J", exp: n + 8}
	case c == 0x10 || c == 0x11:
		return unitInfo{quantity: "volume", unit: "m3", exp: n + 2}
	case c == 0x18 || c == 0x19: // t
		return unitInfo{quantity: "mass", unit: "kg", exp: n + 5}
	case c == 0x1A || c == 0x1B:
		return unitInfo{quantity: "relative humidity", unit: "%", exp: n - 1}
	case c == 0x21: // 0.1 ft3
		return unitInfo{quantity: "volume", unit: "m3", exp: -1, mul: 0.028316846592}
	case c == 0x22: // 0.1 US gallon
		return unitInfo{quantity: "volume", unit: "m3", exp: -1, mul: 0.003785411784}
	case c == 0x23:
		return unitInfo{quantity: "volume", unit: "m3", mul: 0.003785411784}
	case c == 0x24: // 0.001 US gallon/min
		return unitInfo{quantity: "volume flow", unit: "m3/h", exp: -3, mul: 0.003785411784 * 60}
	case c == 0x25:
		return unitInfo{quantity: "volume flow", unit: "m3/h", mul: 0.003785411784 * 60}
	case c == 0x26:
		return unitInfo{quantity: "volume flow", unit: "m3/h", mul: 0.003785411784}
	case c == 0x28 || c == 0x29: // MW
		return unitInfo{quantity: "power", unit: "W", exp: n + 5}
	case c == 0x30 || c == 0x31: // GJ/h
		return unitInfo{quantity: "power", unit: "J/h", exp: n + 8}
	case c >= 0x58 && c <= 0x5B:
		return fahrenheit("flow temperature", nn, false)
	case c >= 0x5C && c <= 0x5F:
		return fahrenheit("return temperature", nn, false)
	case c >= 0x60 && c <= 0x63:
		return fahrenheit("temperature difference", nn, true)
	case c >= 0x64 && c <= 0x67:
		return fahrenheit("external temperature", nn, false)
	case c >= 0x70 && c <= 0x73:
		return fahrenheit("cold/warm temperature limit", nn, false)
	case c >= 0x74 && c <= 0x77:
		return unitInfo{quantity: "cold/warm temperature limit", unit: "degC", exp: nn - 3}
	case c >= 0x78:
		return unitInfo{quantity: "cumulative count max power", unit: "W", exp: int(c&0x07) - 3}
	}
	return unitInfo{quantity: fmt.Sprintf("reserved FB extension 0x%02X", c)}
}

// fahrenheit converts 10^(nn-3) °F to degC (or, for a difference, to K).
func fahrenheit(q string, nn int, difference bool) unitInfo {
	if difference {
		return unitInfo{quantity: q, unit: "K", exp: nn - 3, mul: 5.0 / 9}
	}
	return unitInfo{quantity: q, unit: "degC", exp: nn - 3, mul: 5.0 / 9, offset: -32 * 5.0 / 9}
}

var perUnit = map[byte]string{
	0x20: "/s", 0x21: "/min", 0x22: "/h", 0x23: "/d", 0x24: "/week", 0x25: "/month",
	0x26: "/year", 0x27: "/revolution", 0x2C: "/l", 0x2D: "/m3", 0x2E: "/kg", 0x2F: "/K",
	0x30: "/kWh", 0x31: "/GJ", 0x32: "/kW", 0x33: "/(K*l)", 0x34: "/V", 0x35: "/A",
	0x36: "*s", 0x37: "*s/V", 0x38: "*s/A",
}

var orthogonalNames = map[byte]string{
	0x28: "increment per input pulse on channel 0",
	0x29: "increment per input pulse on channel 1",
	0x2A: "increment per output pulse on channel 0",
	0x2B: "increment per output pulse on channel 1",
	0x39: "start date/time of",
	0x3A: "uncorrected",
	0x3B: "forward flow",
	0x3C: "backward flow",
	0x40: "lower limit value",
	0x48: "upper limit value",
	0x41: "number of exceeds of lower limit",
	0x49: "number of exceeds of upper limit",
	0x7E: "future value",
}

// applyOrthogonal applies a combinable VIFE (EN 13757-3 table 16), e
// without the extension bit, to u.
func applyOrthogonal(u *unitInfo, e byte) {
	switch {
	case e <= 0x1F:
		u.quantity += fmt.Sprintf(", record error 0x%02X", e)
	case perUnit[e] != "":
		if u.unit != "" {
			u.unit += perUnit[e]
		} else {
			u.unit = "1" + perUnit[e]
		}
	case e >= 0x40 && e <= 0x4F && e&0x02 != 0: // E100 uf1b
		u.quantity += ", date of limit exceed"
		u.form = formDateTime
		u.unit = ""
	case e >= 0x50 && e <= 0x5F:
		u.quantity += ", duration of limit exceed"
		u.unit, u.exp, u.mul, u.offset = "s", 0, durations[e&0x03], 0
	case e >= 0x68 && e <= 0x6F && e&0x02 != 0: // E110 1f1b
		u.quantity += ", date of begin/end of duration"
		u.form = formDateTime
		u.unit = ""
	case e >= 0x60 && e <= 0x67:
		u.quantity += ", duration"
		u.unit, u.exp, u.mul, u.offset = "s", 0, durations[e&0x03], 0
	case e >= 0x70 && e <= 0x77:
		u.exp += int(e&0x07) - 6
	case e >= 0x78 && e <= 0x7B:
		// The record carries an additive correction constant in the VIF's
		// unit times 10^(nn-3); scale the value, name it as such.
		u.quantity += ", additive correction"
		u.exp += int(e&0x03) - 3
	case e == 0x7D:
		u.exp += 3
	case orthogonalNames[e] != "":
		u.quantity += ", " + orthogonalNames[e]
		if e == 0x39 {
			u.form = formDateTime
			u.unit = ""
		}
		if e == 0x41 || e == 0x49 {
			u.unit, u.exp, u.mul, u.offset = "", 0, 0, 0
		}
	default:
		u.quantity += fmt.Sprintf(", reserved VIFE 0x%02X", e)
	}
}
