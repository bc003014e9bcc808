package cjt188

import (
	"fmt"
	"math"
)

// Stored values of the 2018 edition, as one open implementation reads them
// (vendors differ; a meter without them answers with its error bit or not
// at all). D120–D12B (DIHistory1..12) are the settlement-day volumes of
// both editions.
const (
	// DIFreezeTimed is the newest timed freeze (the daily freeze);
	// DIFreezeTimed+n-1 the n-th newest, up to D3FF (256).
	DIFreezeTimed DI = 0xD300
	// DIFreezeInstant is the newest freeze made on a command; up to D4FF.
	DIFreezeInstant DI = 0xD400
	// FreezeDepth is how many records of each kind a DI can reach.
	FreezeDepth = 256
)

// FreezeLen is a freeze reply's data length: DI, SER, the freeze time (7),
// volume (5), flow (5), temperature (3), pressure (3).
const FreezeLen = 3 + 23

// IsFreeze reports a D300–D4FF identifier.
func (d DI) IsFreeze() bool { return d >= DIFreezeTimed && d <= DIFreezeInstant+FreezeDepth-1 }

// Freeze is one freeze record: what the meter held at Time by its own
// clock. Flow has four decimals; temperature (°C) and pressure (MPa) two.
type Freeze struct {
	Time        Clock
	Volume      Quantity
	Flow        Quantity
	Temperature float64
	Pressure    float64
}

// DecodeFreeze reads a D3xx/D4xx reply body (after DI and SER). The time
// is read in order o; a record of all zeros (a slot never written) has the
// zero Clock.
func DecodeFreeze(body []byte, o ClockOrder) (Freeze, error) {
	if len(body) < FreezeLen-3 {
		return Freeze{}, fmt.Errorf("%w %02X: a freeze reply has %02X (26) data bytes", ErrLength, len(body)+3, FreezeLen)
	}
	var f Freeze
	var err error
	if f.Time, err = DecodeClock(body[0:7], o); err != nil {
		return Freeze{}, fmt.Errorf("freeze time: %w", err)
	}
	if f.Volume, err = decodeQuantity(body[7:12]); err != nil {
		return Freeze{}, fmt.Errorf("frozen volume: %w", err)
	}
	v, err := bcd(body[12:16])
	if err != nil {
		return Freeze{}, fmt.Errorf("frozen flow: %w", err)
	}
	f.Flow = Quantity{Value: float64(v) / 10000, Unit: Unit(body[16])}
	t, err := bcd(body[17:20])
	if err != nil {
		return Freeze{}, fmt.Errorf("frozen temperature: %w", err)
	}
	p, err := bcd(body[20:23])
	if err != nil {
		return Freeze{}, fmt.Errorf("frozen pressure: %w", err)
	}
	f.Temperature, f.Pressure = float64(t)/100, float64(p)/100
	return f, nil
}

// AppendFreeze appends a freeze reply body, the time in order o.
func AppendFreeze(dst []byte, f Freeze, o ClockOrder) ([]byte, error) {
	dst, err := AppendClock(dst, f.Time, o)
	if err != nil {
		return dst, err
	}
	dst = AppendQuantity(dst, f.Volume)
	dst = append(appendBCD(dst, uint64(math.Round(math.Max(f.Flow.Value, 0)*10000))%100000000, 4), byte(f.Flow.Unit))
	dst = appendBCD(dst, uint64(math.Round(math.Max(f.Temperature, 0)*100))%1000000, 3)
	return appendBCD(dst, uint64(math.Round(math.Max(f.Pressure, 0)*100))%1000000, 3), nil
}
