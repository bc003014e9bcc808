package drivers

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	dcjt "tidegate/drivers/cjt188"
	pcjt "tidegate/protocol/cjt188"
	"tidegate/reading"
)

// cjtPoller adapts drivers/cjt188's client to the bus scheduler.
type cjtPoller struct {
	c         *dcjt.Client
	meters    map[string]dcjt.PollMeter
	threshold time.Duration
	busy      atomic.Int64
	// The bus goroutine only:
	lastDue *reading.Reading
	drifted map[string]bool // meters whose clock_drift event is out
	events  []reading.Event
}

// cjtMeters checks and converts the meters of a CJ/T 188 bus.
func cjtMeters(cfg BusConfig, meters []MeterConfig) (map[string]dcjt.PollMeter, error) {
	out := map[string]dcjt.PollMeter{}
	seen := map[pcjt.Address]string{}
	for _, m := range meters {
		pm, err := cjtMeter(m)
		if err != nil {
			return nil, fmt.Errorf("bus %s: meter %s: %w", cfg.Name, m.ID, err)
		}
		if other, dup := seen[pm.Address]; dup {
			return nil, fmt.Errorf("bus %s: meter %s: address %s is meter %s's too", cfg.Name, m.ID, pm.Address, other)
		}
		seen[pm.Address] = m.ID
		out[m.ID] = pm
	}
	return out, nil
}

// cjtMeter reads a meter's CJ/T 188 settings.
func cjtMeter(m MeterConfig) (dcjt.PollMeter, error) {
	c := m.CJT
	pm := dcjt.PollMeter{Meter: dcjt.Meter{ID: m.ID, Layout: c.StatusLayout}, SettlementDay: c.SettlementDay, Location: m.Location}
	var err error
	if pm.Address, err = pcjt.ParseAddress(c.Address); err != nil {
		return pm, err
	}
	if pm.Address.IsBroadcast() {
		return pm, fmt.Errorf("address: the broadcast address reads any meter; give the 14 digits on the meter's label")
	}
	if c.MeterType != "" {
		if pm.Type, err = pcjt.ParseMeterType(c.MeterType); err != nil {
			return pm, err
		}
	}
	if pm.Order, err = pcjt.ParseDIOrder(c.DIOrder); err != nil {
		return pm, err
	}
	if pm.Clock, err = pcjt.ParseClockOrder(c.ClockOrder); err != nil {
		return pm, err
	}
	if err := c.StatusLayout.Check(); err != nil {
		return pm, err
	}
	if c.SettlementDay < 0 || c.SettlementDay > 28 {
		return pm, fmt.Errorf("settlement_day %d: want 1..28", c.SettlementDay)
	}
	return pm, nil
}

// openCJT188 opens a CJ/T 188 master on the bus's line. Only a configured
// answer timeout is passed on: the driver's default counts to the first
// byte of the answer and adds the answer's own wire time.
func openCJT188(cfg BusConfig, meters map[string]dcjt.PollMeter) (poller, error) {
	opt := dcjt.Options{Preamble: cfg.CJT.Preamble}
	if cfg.Timeout != defaultTimeout(cfg) {
		opt.Timeout = cfg.Timeout
	}
	c, err := dcjt.Open(cfg.Link, opt, cfg.CJT.Location)
	if err != nil {
		return nil, err
	}
	return &cjtPoller{c: c, meters: meters, threshold: cfg.CJT.DriftThreshold, drifted: map[string]bool{}}, nil
}

func (p *cjtPoller) poll(ctx context.Context, m *meterState, raw bool) (reading.Reading, error) {
	start := time.Now()
	defer func() { p.busy.Add(int64(time.Since(start))) }()
	pm, ok := p.meters[m.cfg.ID]
	if !ok {
		return reading.Reading{}, fmt.Errorf("meter %s: not configured on this bus", m.cfg.ID)
	}
	res, err := p.c.Poll(ctx, pm, raw)
	p.lastDue = nil
	if err != nil {
		return res.Reading, err
	}
	p.lastDue = res.Due
	if res.Reading.Has&reading.HasMeterTime != 0 {
		p.checkDrift(m.cfg.ID, res)
	}
	return res.Reading, nil
}

// checkDrift sends one clock_drift event when a meter's clock goes beyond
// the threshold, and arms again once it is back within half of it (set
// through A015 or by hand), so a drifting meter is not an event per poll.
func (p *cjtPoller) checkDrift(id string, res dcjt.Result) {
	d := res.Drift
	if d < 0 {
		d = -d
	}
	switch {
	case d > p.threshold && !p.drifted[id]:
		p.drifted[id] = true
		way := "ahead of"
		if res.Drift < 0 {
			way = "behind"
		}
		p.events = append(p.events, reading.Event{
			Time: res.Reading.Received, Meter: id, Type: "clock_drift",
			Message: fmt.Sprintf("meter clock %s %s the gateway's", d.Round(time.Second), way),
			Attrs:   map[string]string{"drift_s": fmt.Sprintf("%.0f", res.Drift.Seconds()), "meter_time": res.Reading.MeterTime.Format("2006-01-02T15:04:05")},
		})
	case d <= p.threshold/2:
		delete(p.drifted, id)
	}
}

func (p *cjtPoller) takeEvents() []reading.Event {
	e := p.events
	p.events = nil
	return e
}

// due is the settlement-day volume the last successful poll carried.
func (p *cjtPoller) due() (reading.Reading, bool) {
	if p.lastDue == nil {
		return reading.Reading{}, false
	}
	return *p.lastDue, true
}

func (p *cjtPoller) counters() Counters {
	c := p.c.Counters()
	return Counters{
		Requests:   c.Requests.Load(),
		Timeouts:   c.Timeouts.Load(),
		CRCErrors:  c.Garbled.Load() + c.Truncated.Load(),
		Exceptions: c.Refused.Load(),
		Stray:      c.Stray.Load() + c.Foreign.Load(),
		Collisions: c.Collisions.Load(),
		BusyNanos:  p.busy.Load(),
	}
}

func (p *cjtPoller) close() error { return p.c.Close() }

// valve sends A017 to a CJ/T 188 meter.
func (p *cjtPoller) valve(ctx context.Context, m *meterState, open bool) (string, error) {
	pm, ok := p.meters[m.cfg.ID]
	if !ok {
		return "", fmt.Errorf("meter %s: not configured on this bus", m.cfg.ID)
	}
	st, ok, err := p.c.Valve(ctx, pm.Meter, open)
	if err != nil {
		return "", fmt.Errorf("meter %s: %w", m.cfg.ID, err)
	}
	if !ok {
		return "", nil
	}
	return st.Valve(pm.Layout).String(), nil
}

func isRefusal(err error) bool { return errors.Is(err, dcjt.ErrRefused) }
