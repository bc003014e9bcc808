package modbus

import (
	"errors"
	"fmt"
	"strconv"

	"tidegate/reading"
)

// ErrOutOfRange is wrapped when a decoded value lies outside its register's
// physical range: the map does not fit the device (wrong profile, wrong
// word order, another device at that address).
var ErrOutOfRange = errors.New("outside the profile's physical range")

// CheckRange returns an error for the first quantity in v outside its
// register's min/max, in profile order; nil when every value is plausible.
func (p *Profile) CheckRange(v Values) error {
	for _, r := range p.Registers {
		x, ok := v.Numbers[r.Quantity]
		if !ok || (r.Min == nil || x >= *r.Min) && (r.Max == nil || x <= *r.Max) {
			continue
		}
		return fmt.Errorf("%s %s %s is %w %s..%s (%s): check the profile and the address",
			r.Quantity, strconv.FormatFloat(x, 'f', -1, 64), r.Unit, ErrOutOfRange, bound(r.Min), bound(r.Max), p.Name)
	}
	return nil
}

func bound(b *float64) string {
	if b == nil {
		return "∞"
	}
	return strconv.FormatFloat(*b, 'f', -1, 64)
}

// MarkImplausible downgrades a good reading whose canonical values the
// profile says the meter cannot show: the values are kept, for the
// technician to see, but no stage counts them as a measurement.
func (p *Profile) MarkImplausible(r *reading.Reading) {
	if r.Quality != reading.QualityGood {
		return
	}
	v := Values{Numbers: map[string]float64{}}
	for _, f := range []struct {
		q   string
		has reading.Field
		x   float64
	}{{QForward, reading.HasForward, r.Forward}, {QReverse, reading.HasReverse, r.Reverse}, {QNet, reading.HasNet, r.Net},
		{QFlow, reading.HasFlow, r.Flow}, {QTemperature, reading.HasTemperature, r.Temperature}, {QBattery, reading.HasBattery, float64(r.BatteryMV)}} {
		if r.Has&f.has != 0 {
			v.Numbers[f.q] = f.x
		}
	}
	if err := p.CheckRange(v); err != nil {
		r.Quality = reading.QualityImplausible
		r.Error = err.Error()
	}
}
