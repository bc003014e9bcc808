package drivers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tidegate/reading"
)

// Meter clocks kept right (opt-in per meter, MeterConfig.ClockSync). After
// a good scheduled poll whose meter clock is further off the gateway's than
// the threshold, the bus writes the gateway's time to the meter (CJ/T 188
// A015) and polls again to see what the write did: one "clock_set" event
// with the drift before and after. Only from a synchronised gateway clock
// (GatewayClock): otherwise one "clock_set_skipped" event, and the meter is
// left alone until the gateway's clock is synchronised. A write that did not
// bring the meter within the threshold is not repeated for clockRetry.

// GatewayClock says whether the gateway's own clock can be trusted to set
// a meter's by.
type GatewayClock interface {
	Synchronized() (bool, error)
}

// clockRetry is how long a meter whose clock write failed waits for the next.
const clockRetry = 6 * time.Hour

// clockSetter is a poller that can write a meter's clock.
type clockSetter interface {
	setClock(ctx context.Context, m *meterState, t time.Time) error
}

func (p *cjtPoller) setClock(ctx context.Context, m *meterState, t time.Time) error {
	pm, ok := p.meters[m.cfg.ID]
	if !ok {
		return fmt.Errorf("meter %s: not configured on this bus", m.cfg.ID)
	}
	if err := p.c.SetClock(ctx, pm.Meter, t); err != nil { // t is in the meter's zone (Bus.location)
		return fmt.Errorf("meter %s: %w", m.cfg.ID, err)
	}
	return nil
}

func (p *mixedPoller) setClock(ctx context.Context, m *meterState, t time.Time) error {
	if m.cfg.Protocol != ProtoCJT188 {
		return p.mbus.setClock(ctx, m, t)
	}
	return p.cjt.setClock(ctx, m, t)
}

func (b *Bus) gatewayClock() GatewayClock {
	if b.cfg.GatewayClock != nil {
		return b.cfg.GatewayClock
	}
	return noClock{}
}

// noClock is a bus's gateway clock when its owner gave none: a meter
// clock is then never set (the owner knows how the box keeps its time).
type noClock struct{}

// ErrNoGatewayClock: the bus was given no way to tell whether the
// gateway's clock is synchronised.
var ErrNoGatewayClock = errors.New("no gateway clock state given to the bus")

func (noClock) Synchronized() (bool, error) { return false, ErrNoGatewayClock }

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// keepClock runs on the bus goroutine after a good scheduled poll of m.
func (b *Bus) keepClock(ctx context.Context, p poller, m *meterState, r reading.Reading) {
	threshold := m.cfg.ClockSync
	if threshold <= 0 || r.Has&reading.HasMeterTime == 0 {
		return
	}
	cs, ok := p.(clockSetter)
	if !ok {
		return
	}
	before := b.meterDrift(p, m, r)
	now := b.now()
	b.mu.Lock()
	next, skipped := m.clockNext, m.clockSkipped
	b.mu.Unlock()
	if absDur(before) <= threshold || now.Before(next) {
		return
	}
	attrs := map[string]string{"bus": b.cfg.Name, "drift_before_s": fmt.Sprintf("%.0f", before.Seconds()),
		"meter_time": r.MeterTime.Format("2006-01-02T15:04:05")}
	synced, err := b.gatewayClock().Synchronized()
	if !synced {
		if !skipped {
			why := "the gateway's clock is not synchronised"
			if err != nil {
				why += ": " + err.Error()
			}
			b.mu.Lock()
			m.clockSkipped = true
			b.mu.Unlock()
			b.sink.Event(reading.Event{Time: now, Meter: m.cfg.ID, Type: "clock_set_skipped", Attrs: attrs,
				Message: fmt.Sprintf("meter clock %s off, not set: %s", before.Round(time.Second), why)})
			b.log.WithField("meter", m.cfg.ID).Warn("meter clock not set: " + why)
		}
		return
	}
	b.mu.Lock()
	m.clockSkipped = false
	b.mu.Unlock()
	err = cs.setClock(ctx, m, time.Now().In(b.location(m)))
	outcome, after := "done", time.Duration(0)
	if err == nil {
		r2, perr := p.poll(ctx, m, false)
		switch {
		case perr != nil:
			outcome, err = "unverified", perr
		case r2.Has&reading.HasMeterTime == 0:
			outcome = "unverified"
		default:
			after = b.meterDrift(p, m, r2)
			attrs["drift_after_s"] = fmt.Sprintf("%.0f", after.Seconds())
			if absDur(after) > threshold {
				outcome = "mismatch"
			}
		}
	} else {
		outcome = "failed"
	}
	if outcome != "done" {
		b.mu.Lock()
		m.clockNext = now.Add(clockRetry)
		b.mu.Unlock()
	}
	attrs["outcome"] = outcome
	msg := fmt.Sprintf("meter clock set: %s off before, %s after (%s)", before.Round(time.Second), after.Round(time.Second), outcome)
	if err != nil {
		msg = fmt.Sprintf("meter clock %s off, set %s: %v", before.Round(time.Second), outcome, err)
	}
	b.sink.Event(reading.Event{Time: b.now(), Meter: m.cfg.ID, Type: "clock_set", Message: msg, Attrs: attrs})
	b.log.WithField("meter", m.cfg.ID).Info(msg)
}
