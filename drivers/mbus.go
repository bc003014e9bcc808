package drivers

import (
	"context"
	"sync/atomic"
	"time"

	dmbus "tidegate/drivers/mbus"
	"tidegate/reading"
)

// mbusPoller adapts drivers/mbus's client to the bus scheduler.
type mbusPoller struct {
	c    *dmbus.Client
	busy atomic.Int64 // ns the line spent in reads (selects, requests, answers)
}

// openMBus opens an M-Bus master on the bus's line. drivers/mbus counts the
// answer timeout to the first byte of the answer (the frame then ends by
// its length); the bus default includes a whole long telegram, so only a
// configured override is passed on.
func openMBus(cfg BusConfig) (poller, error) {
	opt := dmbus.Options{}
	if cfg.Timeout != defaultTimeout(cfg) {
		opt.Timeout = cfg.Timeout
	}
	c, err := dmbus.Open(cfg.Link, opt)
	if err != nil {
		return nil, err
	}
	return &mbusPoller{c: c}, nil
}

func (p *mbusPoller) poll(ctx context.Context, m *meterState, raw bool) (reading.Reading, error) {
	start := time.Now()
	defer func() { p.busy.Add(int64(time.Since(start))) }()
	return p.c.Poll(ctx, dmbus.Meter{ID: m.cfg.ID, Address: byte(m.cfg.Address), Secondary: m.cfg.Secondary}, raw)
}

func (p *mbusPoller) counters() Counters {
	c := p.c.Counters()
	return Counters{
		Requests:   c.Requests.Load(),
		Timeouts:   c.Timeouts.Load(),
		CRCErrors:  c.Checksum.Load() + c.Truncated.Load(),
		Stray:      c.Stray.Load(),
		Collisions: c.Collisions.Load(),
		BusyNanos:  p.busy.Load(),
	}
}

func (p *mbusPoller) close() error { return p.c.Close() }
