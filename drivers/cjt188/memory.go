package cjt188

import (
	"context"
	"fmt"
	"time"

	p "tidegate/protocol/cjt188"
)

// ReadFreeze reads one freeze record (D300–D4FF: the n-th newest timed or
// instant freeze). A slot the meter never wrote comes back with the zero
// Clock.
func (m *Master) ReadFreeze(ctx context.Context, mt Meter, di p.DI) (p.Freeze, Exchange, error) {
	if !di.IsFreeze() {
		return p.Freeze{}, Exchange{}, fmt.Errorf("%w %s: not a freeze record (D300–D4FF)", p.ErrDI, di)
	}
	ex, err := m.Transact(ctx, p.ReadData(mt.typ(), mt.Address, di, mt.Order, 0), p.FreezeLen)
	if err != nil {
		return p.Freeze{}, ex, err
	}
	f, err := p.DecodeFreeze(ex.Reply.Body, mt.Clock)
	if err != nil {
		m.c.Garbled.Add(1)
		return p.Freeze{}, ex, fmt.Errorf("%w: %s: %w", ErrGarbled, di, err)
	}
	return f, ex, nil
}

// ReadSettlement reads D120–D12B: the volume at the n-th last settlement day.
func (m *Master) ReadSettlement(ctx context.Context, mt Meter, n int) (p.Quantity, error) {
	if n < 1 || n > 12 {
		return p.Quantity{}, fmt.Errorf("%w: settlement day %d, want 1..12 (D120–D12B)", p.ErrDI, n)
	}
	di := p.DIHistory1 + p.DI(n-1)
	ex, err := m.Transact(ctx, p.ReadData(mt.typ(), mt.Address, di, mt.Order, 0), 3+5)
	if err != nil {
		return p.Quantity{}, err
	}
	q, err := p.DecodeHistory(ex.Reply.Body)
	if err != nil {
		m.c.Garbled.Add(1)
		return p.Quantity{}, fmt.Errorf("%w: %s: %w", ErrGarbled, di, err)
	}
	return q, nil
}

// SetClock writes the meter clock (A015) as t's wall time, in the meter's
// clock order (seconds first when it is not configured).
func (m *Master) SetClock(ctx context.Context, mt Meter, t time.Time) error {
	c := p.Clock{Year: t.Year(), Month: int(t.Month()), Day: t.Day(), Hour: t.Hour(), Minute: t.Minute(), Second: t.Second()}
	req, err := p.WriteClock(mt.typ(), mt.Address, mt.Order, 0, c, mt.Clock)
	if err != nil {
		return err
	}
	_, err = m.Transact(ctx, req, 3)
	return err
}

// Location is the zone meter clocks are read in.
func (c *Client) Location() *time.Location { return c.loc }

// ReadSettlementDay reads 8103: the day of the month the meter freezes its
// settlement-day volume on.
func (m *Master) ReadSettlementDay(ctx context.Context, mt Meter) (int, error) {
	ex, err := m.Transact(ctx, p.ReadData(mt.typ(), mt.Address, p.DISettlementDay, mt.Order, 0), 3+1)
	if err != nil {
		return 0, err
	}
	d, err := p.DecodeDay(ex.Reply.Body)
	if err != nil {
		m.c.Garbled.Add(1)
		return 0, fmt.Errorf("%w: 8103: %w", ErrGarbled, err)
	}
	return d, nil
}
