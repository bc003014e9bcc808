package drivers

import (
	"context"
	"fmt"

	dmodbus "tidegate/drivers/modbus"
	pmodbus "tidegate/protocol/modbus"
	"tidegate/reading"
)

// poller is one protocol's side of a bus: the one small interface every
// protocol folder is adapted to.
type poller interface {
	poll(ctx context.Context, m *meterState, raw bool) (reading.Reading, error)
	counters() Counters
	close() error
}

// Counters are a bus's wire statistics.
type Counters struct {
	Requests   int64
	Timeouts   int64
	CRCErrors  int64
	Exceptions int64
	Stray      int64
	Stale      int64 // Modbus TCP answers with an old transaction id (late), skipped
	Collisions int64 // answers of several slaves at once (M-Bus: an address used twice)
	BusyNanos  int64
}

// duePoller is a poller whose meters may also keep the value they froze at
// their due date (M-Bus storage 1): the bus sends it with the billing read.
type duePoller interface {
	due() (reading.Reading, bool)
}

// eventPoller is a poller that notices things worth an event beside its
// readings; the bus sends them after each poll.
type eventPoller interface {
	takeEvents() []reading.Event
}

type modbusPoller struct {
	c        *dmodbus.Client
	profiles map[string]*pmodbus.Profile
}

func openModbus(cfg BusConfig, profiles map[string]*pmodbus.Profile) (poller, error) {
	c, err := dmodbus.Open(cfg.Link, cfg.Protocol == ProtoModbusTCP, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	return &modbusPoller{c: c, profiles: profiles}, nil
}

func (p *modbusPoller) poll(ctx context.Context, m *meterState, raw bool) (reading.Reading, error) {
	prof := p.profiles[m.cfg.Profile]
	if prof == nil {
		return reading.Reading{}, fmt.Errorf("meter %s: profile %q not loaded", m.cfg.ID, m.cfg.Profile)
	}
	r, err := p.c.Poll(ctx, dmodbus.Meter{ID: m.cfg.ID, Address: byte(m.cfg.Address), Profile: prof}, raw)
	if err == nil {
		prof.MarkImplausible(&r)
	}
	return r, err
}

func (p *modbusPoller) counters() Counters {
	c := &p.c.Counters
	return Counters{Requests: c.Requests.Load(), Timeouts: c.Timeouts.Load(), CRCErrors: c.CRCErrors.Load(),
		Exceptions: c.Exceptions.Load(), Stray: c.Stray.Load(), Stale: c.Stale.Load(), BusyNanos: c.BusyNanos.Load()}
}

func (p *modbusPoller) close() error { return p.c.Close() }
