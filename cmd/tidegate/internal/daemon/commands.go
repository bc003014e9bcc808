package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tidegate/reading"
	"tidegate/uplink"
)

// ErrIntervalRemote: the poll interval is part of the config file, which is
// the one source of truth a technician reads; a remote change that a reload
// would silently undo is refused.
var ErrIntervalRemote = errors.New("poll intervals are set in the config file (meters[].poll) and applied with a reload")

// commands serves the uplink's downlink commands (off unless mqtt.commands).
type commands struct{ d *Daemon }

// ReadMeter polls one meter now on its bus, between scheduled requests.
func (c commands) ReadMeter(ctx context.Context, meter string) (reading.Reading, error) {
	cfg := c.d.config()
	m, ok := cfg.MeterByID(meter)
	if !ok {
		return reading.Reading{}, fmt.Errorf("%w: %q", ErrUnknownMeter, meter)
	}
	c.d.mu.Lock()
	b := c.d.buses[m.Bus]
	c.d.mu.Unlock()
	if b == nil {
		return reading.Reading{}, fmt.Errorf("bus %q of meter %q is not running", m.Bus, m.ID)
	}
	return b.readNow(ctx, m.ID)
}

// SetInterval is refused: see ErrIntervalRemote.
func (c commands) SetInterval(_ context.Context, meter string, every time.Duration) error {
	if _, ok := c.d.config().MeterByID(meter); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownMeter, meter)
	}
	return fmt.Errorf("%w (asked: %s every %s)", ErrIntervalRemote, meter, every)
}

// Valve opens or closes a CJ/T 188 meter's valve (downlink "valve"; the
// uplink has checked its signature, freshness and id; also the API's POST
// /v1/valve). See Daemon.valve for what is checked here.
func (c commands) Valve(ctx context.Context, r uplink.ValveRequest) (any, error) {
	res, err := c.d.valve(ctx, valveRequest{ID: r.ID, Meter: r.Meter, Action: r.Action, Operator: r.Operator, Sender: r.Sender, NotAfter: r.NotAfter})
	if res.Outcome == "" {
		return nil, err
	}
	return res, err // a refused or failed write still reports what was read back
}
