package mbus

import (
	"context"
	"fmt"
	"time"

	pmbus "tidegate/protocol/mbus"
)

// SetTime sets a meter's clock: SND_UD with CI 51 and one type F date-time
// record (DIF 04, VIF 6D) carrying t's wall time, to the meter's primary
// address or, for a meter read by secondary address, to 253 after
// selecting it. The meter acknowledges with E5.
func (c *Client) SetTime(ctx context.Context, m Meter, t time.Time) error {
	data, err := pmbus.AppendRecord(nil, pmbus.Record{DIB: []byte{0x04}, VIB: []byte{0x6D}, Value: pmbus.DateTime(t)})
	if err != nil {
		return err
	}
	addr := m.Address
	if m.Secondary != "" {
		p, err := ParsePattern(m.Secondary)
		if err != nil {
			return fmt.Errorf("meter %s: %w", m.ID, err)
		}
		switch r, _, err := c.selectPattern(ctx, p, true, 0); {
		case err != nil:
			return fmt.Errorf("meter %s: %w", m.ID, err)
		case r == ProbeNone:
			return fmt.Errorf("meter %s: select %s: %w", m.ID, p, ErrTimeout)
		case r == ProbeCollision:
			return fmt.Errorf("meter %s: select %s: %w", m.ID, p, ErrCollision)
		}
		addr = pmbus.AddrNetworkLayer
	}
	req, err := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CSndUd), Address: addr, CI: 0x51, Data: data})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.send(ctx, req); err != nil {
		return err
	}
	f, _, err := c.receive(ctx, req)
	if err != nil {
		return fmt.Errorf("meter %s: set time: %w", m.ID, err)
	}
	if f.Kind != pmbus.KindAck {
		return fmt.Errorf("meter %s: set time: %w: %v frame", m.ID, ErrUnexpected, f.Kind)
	}
	return nil
}
