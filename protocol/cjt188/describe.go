package cjt188

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Description is a frame as `tidegate decode cjt188` prints it: one flat
// object whose field names are fixed by issue 16 (meter_type, medium,
// address, control, di, ser; for a 901F reply current_m3, settlement_m3,
// meter_time and status; trailing when bytes followed the end byte).
type Description struct {
	MeterType string
	Medium    string
	Address   string
	Control   string
	DI        string
	SER       int
	// Reply carries values: a 901F reply (all four below), a 907F reply
	// (MeterTime) or a D12x reply (Settlement).
	Current    *float64
	Settlement *float64
	Frozen     *float64 // a D3xx/D4xx reply: the frozen volume, MeterTime its freeze time
	MeterTime  *string  // nil: the meter sends no clock
	HasClock   bool     // whether the reply has a clock field at all
	Status     *StatusView
	Trailing   []byte
}

// StatusView is the status word read with a layout.
type StatusView struct {
	Valve      string `json:"valve"`
	BatteryLow bool   `json:"battery_low"`
	Raw        string `json:"raw"`
}

// DescribeOptions choose how ambiguous fields are read. The zero value
// reads the clock in either order and the status in the common layout.
type DescribeOptions struct {
	Clock  ClockOrder
	Layout Layout
}

// Describe decodes one frame from b (preamble and stray bytes before it are
// skipped; what follows its end byte is reported as Trailing) and reads the
// values of the replies this package knows.
func Describe(b []byte, o DescribeOptions) (Description, error) {
	m, n, err := DecodeMessage(b)
	if err != nil {
		return Description{}, err
	}
	d := Description{
		MeterType: m.Type.String(), Medium: m.Type.Medium(), Address: m.Address.String(),
		Control: m.Control.String(), DI: m.DI.String(), SER: int(m.SER),
	}
	if n < len(b) {
		d.Trailing = b[n:]
	}
	if !m.Control.IsReply() || m.Control.IsError() || m.Control.Function() != FuncReadData {
		return d, nil
	}
	switch {
	case m.DI == DICurrent:
		c, err := DecodeCurrent(m.Body, o.Clock)
		if err != nil {
			return Description{}, err
		}
		cur, err := c.Volume.M3()
		if err != nil {
			return Description{}, fmt.Errorf("current volume: %w", err)
		}
		set, err := c.Settlement.M3()
		if err != nil {
			return Description{}, fmt.Errorf("settlement-day volume: %w", err)
		}
		d.Current, d.Settlement, d.HasClock = &cur, &set, true
		if !c.Clock.IsZero() {
			s := c.Clock.String()
			d.MeterTime = &s
		}
		d.Status = &StatusView{Valve: c.Status.Valve(o.Layout).String(), BatteryLow: c.Status.BatteryLow(o.Layout), Raw: c.Status.String()}
	case m.DI == DIClock:
		c, err := DecodeClock(m.Body, o.Clock)
		if err != nil {
			return Description{}, err
		}
		d.HasClock = true
		if !c.IsZero() {
			s := c.String()
			d.MeterTime = &s
		}
	case m.DI >= DIHistory1 && m.DI <= DIHistory12:
		q, err := DecodeHistory(m.Body)
		if err != nil {
			return Description{}, err
		}
		v, err := q.M3()
		if err != nil {
			return Description{}, err
		}
		d.Settlement = &v
	case m.DI.IsFreeze():
		f, err := DecodeFreeze(m.Body, o.Clock)
		if err != nil {
			return Description{}, err
		}
		d.HasClock = true
		if f.Time.IsZero() {
			return d, nil // a slot the meter never wrote
		}
		v, err := f.Volume.M3()
		if err != nil {
			return Description{}, fmt.Errorf("frozen volume: %w", err)
		}
		s := f.Time.String()
		d.Frozen, d.MeterTime = &v, &s
	}
	return d, nil
}

// MarshalJSON writes the flat object; meter_time is null (not absent) for
// a reply with a clock field that holds no clock.
func (d Description) MarshalJSON() ([]byte, error) {
	type base struct {
		MeterType    string      `json:"meter_type"`
		Medium       string      `json:"medium"`
		Address      string      `json:"address"`
		Control      string      `json:"control"`
		DI           string      `json:"di"`
		SER          int         `json:"ser"`
		CurrentM3    *float64    `json:"current_m3,omitempty"`
		SettlementM3 *float64    `json:"settlement_m3,omitempty"`
		FrozenM3     *float64    `json:"frozen_m3,omitempty"`
		Status       *StatusView `json:"status,omitempty"`
		Trailing     string      `json:"trailing,omitempty"`
	}
	b := base{d.MeterType, d.Medium, d.Address, d.Control, d.DI, d.SER, d.Current, d.Settlement, d.Frozen, d.Status,
		strings.ToUpper(hex.EncodeToString(d.Trailing))}
	if !d.HasClock {
		return json.Marshal(b)
	}
	return json.Marshal(struct {
		base
		MeterTime *string `json:"meter_time"`
	}{b, d.MeterTime})
}
