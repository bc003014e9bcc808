package drivers

import (
	"context"
	"fmt"

	dcjt "tidegate/drivers/cjt188"
	"tidegate/drivers/link"
	dmbus "tidegate/drivers/mbus"
	"tidegate/reading"
)

// A mixed line is an M-Bus bus that also carries CJ/T 188 meters at the
// same line settings (both ride the M-Bus physical layer). One line, two
// masters, and the bus's one goroutine: one request at a time, whichever
// protocol the meter speaks. The masters keep the guard silence against
// the line's last traffic, whoever made it.

// mixedMeters are the CJ/T 188 meters of an M-Bus bus; none makes a plain bus.
func mixedMeters(cfg BusConfig, meters []MeterConfig) ([]MeterConfig, error) {
	var out []MeterConfig
	for _, m := range meters {
		switch m.Protocol {
		case "", ProtoMBus:
		case ProtoCJT188:
			out = append(out, m)
		default:
			return nil, fmt.Errorf("bus %s: meter %s: protocol %q cannot share an M-Bus line; want mbus or cjt188", cfg.Name, m.ID, m.Protocol)
		}
	}
	return out, nil
}

// mixedPoller sends each meter's poll to its protocol's poller.
type mixedPoller struct {
	line *link.Line
	mbus *mbusPoller
	cjt  *cjtPoller
	last duePoller // the poller of the last poll, for its due value
}

func openMixed(cfg BusConfig, cjtCfg []MeterConfig) (poller, error) {
	pms, err := cjtMeters(cfg, cjtCfg)
	if err != nil {
		return nil, err
	}
	l, err := link.Open(cfg.Link)
	if err != nil {
		return nil, err
	}
	mopt := dmbus.Options{}
	copt := dcjt.Options{Preamble: cfg.CJT.Preamble}
	if cfg.Timeout != defaultTimeout(cfg) {
		mopt.Timeout, copt.Timeout = cfg.Timeout, cfg.Timeout
	}
	drift := cfg.CJT.DriftThreshold
	if drift <= 0 {
		drift = defaultDrift
	}
	return &mixedPoller{
		line: l,
		mbus: &mbusPoller{c: dmbus.NewClient(l, mopt)},
		cjt:  &cjtPoller{c: dcjt.NewClient(l, copt, cfg.CJT.Location), meters: pms, threshold: drift, drifted: map[string]bool{}},
	}, nil
}

func (p *mixedPoller) poll(ctx context.Context, m *meterState, raw bool) (reading.Reading, error) {
	if m.cfg.Protocol == ProtoCJT188 {
		p.last = p.cjt
		return p.cjt.poll(ctx, m, raw)
	}
	p.last = p.mbus
	return p.mbus.poll(ctx, m, raw)
}

func (p *mixedPoller) due() (reading.Reading, bool) {
	if p.last == nil {
		return reading.Reading{}, false
	}
	return p.last.due()
}

func (p *mixedPoller) takeEvents() []reading.Event { return p.cjt.takeEvents() }

func (p *mixedPoller) counters() Counters {
	a, b := p.mbus.counters(), p.cjt.counters()
	return Counters{
		Requests: a.Requests + b.Requests, Timeouts: a.Timeouts + b.Timeouts, CRCErrors: a.CRCErrors + b.CRCErrors,
		Exceptions: a.Exceptions + b.Exceptions, Stray: a.Stray + b.Stray, Collisions: a.Collisions + b.Collisions,
		BusyNanos: a.BusyNanos + b.BusyNanos,
	}
}

func (p *mixedPoller) close() error { return p.line.Close() }

func (p *mixedPoller) valve(ctx context.Context, m *meterState, open bool) (string, error) {
	if m.cfg.Protocol != ProtoCJT188 {
		return "", fmt.Errorf("meter %s: %w", m.cfg.ID, ErrNoValveControl)
	}
	return p.cjt.valve(ctx, m, open)
}
