package drivers

import (
	"context"
	"fmt"
	"time"

	dmbus "tidegate/drivers/mbus"
	"tidegate/reading"
)

// An M-Bus meter's stored values come in its REQ_UD2 answer (and the
// telegrams after it): historic values under storage numbers 2 up, each
// with its date (drivers/mbus/stored.go). Reading them back is one more
// read of the meter. Its clock is set with SND_UD and a type F record.

func (p *mbusPoller) meter(m *meterState) dmbus.Meter {
	return dmbus.Meter{ID: m.cfg.ID, Address: byte(m.cfg.Address), Secondary: m.cfg.Secondary}
}

func (p *mbusPoller) freezes(ctx context.Context, m *meterState, after time.Time, max int) ([]reading.Reading, error) {
	res, err := p.c.PollResult(ctx, p.meter(m), false)
	if err != nil {
		return nil, fmt.Errorf("meter %s: %w", m.cfg.ID, err)
	}
	var out []reading.Reading
	for _, r := range res.Stored { // newest first
		if len(out) == max || (!after.IsZero() && !r.MeterTime.After(after)) {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

// settlements: an M-Bus meter's due-date value (storage 1) travels with
// each billing read already.
func (p *mbusPoller) settlements(context.Context, *meterState, time.Time) ([]reading.Reading, error) {
	return nil, nil
}

func (p *mbusPoller) setClock(ctx context.Context, m *meterState, t time.Time) error {
	return p.c.SetTime(ctx, p.meter(m), t)
}

// wallTimes: an M-Bus meter's dates are wall times without a zone (decoded
// as UTC); compared with the gateway's clock they are read in the bus's zone.
func (p *mbusPoller) wallTimes(*meterState) bool { return true }

func (p *mixedPoller) wallTimes(m *meterState) bool { return m.cfg.Protocol != ProtoCJT188 }

// wallTimer is a poller whose meters' times are zone-less wall times.
type wallTimer interface{ wallTimes(m *meterState) bool }

// meterDrift is the meter clock minus the gateway's at a poll.
func (b *Bus) meterDrift(p poller, m *meterState, r reading.Reading) time.Duration {
	if w, ok := p.(wallTimer); ok && w.wallTimes(m) {
		t := r.MeterTime
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), b.location())
		if t.Second() == 0 && t.Nanosecond() == 0 {
			// A type F date-time shows whole minutes: the clock is off only
			// by what lies outside the minute it shows.
			switch {
			case r.Received.Before(t):
				return t.Sub(r.Received)
			case r.Received.Before(t.Add(time.Minute)):
				return 0
			}
			return t.Add(time.Minute).Sub(r.Received)
		}
		return t.Sub(r.Received)
	}
	return r.MeterTime.Sub(r.Received)
}

func (b *Bus) location() *time.Location {
	if b.cfg.CJT.Location != nil {
		return b.cfg.CJT.Location
	}
	return time.Local
}
