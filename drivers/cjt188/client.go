package cjt188

import (
	"context"
	"fmt"
	"time"

	"tidegate/drivers/link"
	p "tidegate/protocol/cjt188"
	"tidegate/reading"
)

// Result is one poll: the current reading and, when the meter's settlement
// day is known, its settlement-day volume as a storage-1 reading (what the
// meter froze at that date, like M-Bus's due-date value).
type Result struct {
	Reading reading.Reading
	// Due is the settlement-day volume (Storage 1, Forward). Its MeterTime
	// is the settlement date when Meter.SettlementDay is set.
	Due *reading.Reading
	// Drift is the meter clock minus the gateway's at the answer; valid
	// when the meter sent a clock (Reading.Has&HasMeterTime).
	Drift time.Duration
}

// PollMeter is a configured meter as the client polls it.
type PollMeter struct {
	Meter
	// SettlementDay is the meter's settlement day of the month (1..28),
	// 0 when unknown: the due value then has no date.
	SettlementDay int
	// Location is the zone the meter's clock keeps; nil: the client's.
	Location *time.Location
}

// Client is a master on its own line, the shape the bus scheduler polls.
type Client struct {
	*Master
	loc *time.Location
	now func() time.Time
}

// Open opens the line and prepares a master on it. Meter clocks are read
// as local time in loc (nil: the gateway's local zone).
func Open(cfg link.Config, opt Options, loc *time.Location) (*Client, error) {
	l, err := link.Open(cfg)
	if err != nil {
		return nil, err
	}
	return NewClient(l, opt, loc), nil
}

// NewClient is a client over an open line.
func NewClient(l Line, opt Options, loc *time.Location) *Client {
	if loc == nil {
		loc = time.Local
	}
	return &Client{Master: NewMaster(l, opt, nil), loc: loc, now: time.Now}
}

// Poll reads 901F of a meter. On failure the reading is marked
// QualityError with the reason, and the error says what happened
// (IsMeterError for the meter's failures; others are the line's).
func (c *Client) Poll(ctx context.Context, m PollMeter, raw bool) (Result, error) {
	res, err := c.poll(ctx, m, raw)
	if err != nil {
		res.Reading = reading.Reading{Meter: m.ID, Received: c.now(), Quality: reading.QualityError, Error: err.Error()}
		res.Due = nil
	}
	return res, err
}

func (c *Client) poll(ctx context.Context, m PollMeter, raw bool) (Result, error) {
	cur, ex, err := c.Current(ctx, m.Meter)
	if err != nil {
		return Result{}, fmt.Errorf("meter %s: %w", m.ID, err)
	}
	received := c.now()
	loc := c.loc
	if m.Location != nil {
		loc = m.Location
	}
	return Decode(m, cur, ex.Raw, received, loc, raw)
}

// Decode maps a 901F reply onto the canonical reading: the one cumulative
// total as Forward (CJ/T 188 has no reverse register; whether the meter
// nets reverse flow out of it is the meter's business), the meter clock,
// valve and battery from the status word through the meter's layout.
func Decode(m PollMeter, cur p.Current, rawBytes []byte, received time.Time, loc *time.Location, raw bool) (Result, error) {
	vol, err := cur.Volume.M3()
	if err != nil {
		return Result{}, fmt.Errorf("meter %s: %w: %w", m.ID, ErrNoVolume, err)
	}
	r := reading.Reading{Meter: m.ID, Received: received, Forward: vol, Has: reading.HasForward, Quality: reading.QualityGood}
	if raw {
		r.Raw = rawBytes
	}
	switch cur.Status.Valve(m.Layout) {
	case p.ValveStateClosed:
		r.Status |= reading.StatusValveClosed
	case p.ValveStateAbnormal:
		r.Status |= reading.StatusMeterError
	}
	if cur.Status.BatteryLow(m.Layout) {
		r.Status |= reading.StatusLowBattery
	}
	res := Result{}
	if !cur.Clock.IsZero() {
		k := cur.Clock
		r.MeterTime = time.Date(k.Year, time.Month(k.Month), k.Day, k.Hour, k.Minute, k.Second, 0, loc)
		r.Has |= reading.HasMeterTime
		res.Drift = r.MeterTime.Sub(received)
	}
	res.Reading = r
	if set, err := cur.Settlement.M3(); err == nil {
		due := reading.Reading{Meter: m.ID, Received: received, Forward: set, Has: reading.HasForward,
			Quality: reading.QualityGood, Storage: 1, Status: r.Status}
		if m.SettlementDay > 0 {
			clock := received.In(loc)
			if r.Has&reading.HasMeterTime != 0 {
				clock = r.MeterTime
			}
			d := time.Date(clock.Year(), clock.Month(), m.SettlementDay, 0, 0, 0, 0, loc)
			if d.After(clock) {
				d = d.AddDate(0, -1, 0)
			}
			due.MeterTime, due.Has = d, due.Has|reading.HasMeterTime
		}
		res.Due = &due
	}
	return res, nil
}
