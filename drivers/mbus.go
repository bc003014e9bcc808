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
	c       *dmbus.Client
	busy    atomic.Int64     // ns the line spent in reads (selects, requests, answers)
	lastDue *reading.Reading // the last poll's due-date value; the bus goroutine only
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
	res, err := p.c.PollResult(ctx, dmbus.Meter{ID: m.cfg.ID, Address: byte(m.cfg.Address), Secondary: m.cfg.Secondary, Location: m.cfg.Location}, raw)
	p.lastDue = nil
	if err == nil {
		p.lastDue = res.Due
	}
	return res.Reading, err
}

// due is the due-date value the last successful poll carried, if any.
func (p *mbusPoller) due() (reading.Reading, bool) {
	if p.lastDue == nil {
		return reading.Reading{}, false
	}
	return *p.lastDue, true
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
