package modbus

import "math"

// Scale is how a raw register value becomes engineering units:
// value = raw × Multiplier × 10^Exponent + Offset. The zero value (with a
// zero Multiplier) means ×1, so an unscaled register needs no settings.
type Scale struct {
	Multiplier float64
	Exponent   int
	Offset     float64
}

// Apply converts a raw value to engineering units.
func (s Scale) Apply(raw float64) float64 {
	m := s.Multiplier
	if m == 0 {
		m = 1
	}
	return raw*m*math.Pow10(s.Exponent) + s.Offset
}

// Invert converts engineering units back to a raw value (for the simulator).
func (s Scale) Invert(v float64) float64 {
	m := s.Multiplier
	if m == 0 {
		m = 1
	}
	return (v - s.Offset) / (m * math.Pow10(s.Exponent))
}
