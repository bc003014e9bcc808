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
	return dmbus.Meter{ID: m.cfg.ID, Address: byte(m.cfg.Address), Secondary: m.cfg.Secondary, Location: m.cfg.Location}
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

// minuteClock: an M-Bus meter's date-time (type F) shows whole minutes.
func (p *mbusPoller) minuteClock(*meterState) bool { return true }

func (p *mixedPoller) minuteClock(m *meterState) bool { return m.cfg.Protocol != ProtoCJT188 }

// minuteClocker is a poller whose meters' clocks may show minutes only.
type minuteClocker interface{ minuteClock(m *meterState) bool }

// meterDrift is the meter clock minus the gateway's at a poll.
func (b *Bus) meterDrift(p poller, m *meterState, r reading.Reading) time.Duration {
	if w, ok := p.(minuteClocker); ok && w.minuteClock(m) {
		t := r.MeterTime
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

// location is the zone a meter's clock keeps: its own, the bus's, or the
// gateway's local zone.
func (b *Bus) location(m *meterState) *time.Location {
	switch {
	case m.cfg.Location != nil:
		return m.cfg.Location
	case b.cfg.CJT.Location != nil:
		return b.cfg.CJT.Location
	}
	return time.Local
}
