package drivers

import (
	"context"
	"errors"
	"fmt"
	"time"

	dcjt "tidegate/drivers/cjt188"
	"tidegate/drivers/link"
	pcjt "tidegate/protocol/cjt188"
	"tidegate/reading"
)

// Complete days from the meters' own memory (补抄). A meter with Backfill
// keeps daily freezes (CJ/T 188-2018 D300–D3FF: the total at each midnight
// of its clock). The bus holds, per meter, the date of the newest freeze it
// has delivered (MeterConfig.BackfillFrom at start: the daemon keeps it
// across restarts). After a good scheduled poll whose meter clock has
// reached a later midnight, it reads the freezes newer than that date,
// newest first until it meets one it has, and delivers them oldest first as
// billing records with Source meter_memory and the meter's own time of the
// freeze. So a box that was off, a bus that was down or a meter that was
// offline sends the missed days on the first good poll after, once each;
// a box that runs sends each day's freeze the first poll after midnight.
// A meter with no date held yet delivers only its newest freeze.

// ErrNoMemory: the meter's protocol has no stored values this driver reads.
var ErrNoMemory = errors.New("this meter's protocol has no stored values to read back")

// maxBackfillDays bounds one catch-up: two months of daily freezes.
const maxBackfillDays = 62

// memoryRetry is how long a meter whose memory could not be read waits
// before the next try, so a meter without freezes costs one request an hour.
const memoryRetry = time.Hour

// memoryPoller is a poller whose meters keep values in their memory.
type memoryPoller interface {
	// freezes reads the daily freezes newer than after (all when zero), at
	// most max, newest first; stop ends the walk early (a freeze already held).
	freezes(ctx context.Context, m *meterState, after time.Time, max int) ([]reading.Reading, error)
	// settlements reads the settlement-day volumes (D120–D12B), newest first.
	settlements(ctx context.Context, m *meterState, meterNow time.Time) ([]reading.Reading, error)
}

func (p *cjtPoller) freezes(ctx context.Context, m *meterState, after time.Time, max int) ([]reading.Reading, error) {
	pm, ok := p.meters[m.cfg.ID]
	if !ok {
		return nil, fmt.Errorf("meter %s: not configured on this bus", m.cfg.ID)
	}
	var out []reading.Reading
	for i := 0; i < max && i < pcjt.FreezeDepth; i++ {
		f, _, err := p.c.ReadFreeze(ctx, pm.Meter, pcjt.DIFreezeTimed+pcjt.DI(i))
		if err != nil {
			return out, fmt.Errorf("meter %s: %w", m.cfg.ID, err)
		}
		if f.Time.IsZero() {
			break // a slot never written: the meter's memory ends here
		}
		loc := p.c.Location()
		if pm.Location != nil {
			loc = pm.Location
		}
		at := time.Date(f.Time.Year, time.Month(f.Time.Month), f.Time.Day, f.Time.Hour, f.Time.Minute, f.Time.Second, 0, loc)
		if !after.IsZero() && !at.After(after) {
			break
		}
		vol, err := f.Volume.M3()
		if err != nil {
			return out, fmt.Errorf("meter %s: %w: freeze %s: %w", m.cfg.ID, dcjt.ErrNoVolume, at.Format(time.DateTime), err)
		}
		out = append(out, reading.Reading{Meter: m.cfg.ID, Received: time.Now(), MeterTime: at, Forward: vol,
			Has: reading.HasForward | reading.HasMeterTime, Quality: reading.QualityGood, Source: reading.SourceMeterMemory})
	}
	return out, nil
}

func (p *cjtPoller) settlements(ctx context.Context, m *meterState, meterNow time.Time) ([]reading.Reading, error) {
	pm, ok := p.meters[m.cfg.ID]
	if !ok {
		return nil, fmt.Errorf("meter %s: not configured on this bus", m.cfg.ID)
	}
	day := pm.SettlementDay
	if day == 0 {
		// Not configured: ask the meter (8103); a meter that does not say
		// gives its volumes undated, and they are not sent for a range.
		day, _ = p.c.ReadSettlementDay(ctx, pm.Meter)
	}
	var out []reading.Reading
	for n := 1; n <= 12; n++ {
		q, err := p.c.ReadSettlement(ctx, pm.Meter, n)
		if err != nil {
			return out, fmt.Errorf("meter %s: %w", m.cfg.ID, err)
		}
		vol, err := q.M3()
		if err != nil {
			return out, fmt.Errorf("meter %s: %w: D12%X: %w", m.cfg.ID, dcjt.ErrNoVolume, n-1, err)
		}
		r := reading.Reading{Meter: m.cfg.ID, Received: time.Now(), Forward: vol, Has: reading.HasForward,
			Quality: reading.QualityGood, Storage: uint8(n), Source: reading.SourceMeterMemory}
		if day > 0 && day <= 28 && !meterNow.IsZero() {
			d := time.Date(meterNow.Year(), meterNow.Month(), day, 0, 0, 0, 0, meterNow.Location())
			if d.After(meterNow) {
				d = d.AddDate(0, -1, 0)
			}
			r.MeterTime, r.Has = d.AddDate(0, -(n-1), 0), r.Has|reading.HasMeterTime
		}
		out = append(out, r)
	}
	return out, nil
}

func (p *mixedPoller) freezes(ctx context.Context, m *meterState, after time.Time, max int) ([]reading.Reading, error) {
	if m.cfg.Protocol != ProtoCJT188 {
		return p.mbus.freezes(ctx, m, after, max)
	}
	return p.cjt.freezes(ctx, m, after, max)
}

func (p *mixedPoller) settlements(ctx context.Context, m *meterState, meterNow time.Time) ([]reading.Reading, error) {
	if m.cfg.Protocol != ProtoCJT188 {
		return nil, nil
	}
	return p.cjt.settlements(ctx, m, meterNow)
}

// meterDay is the midnight of the meter's own day at a poll.
func meterDay(r reading.Reading) time.Time {
	t := r.Received
	if r.Has&reading.HasMeterTime != 0 {
		t = r.MeterTime
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
}

// catchUp runs on the bus goroutine after a good scheduled poll of m.
func (b *Bus) catchUp(ctx context.Context, p poller, m *meterState, r reading.Reading) {
	if !m.cfg.Backfill {
		return
	}
	mp, ok := p.(memoryPoller)
	if !ok {
		return
	}
	now := b.now()
	today := meterDay(r)
	b.mu.Lock()
	held, retry, tried := m.memHeld, m.memRetry, m.memTried
	b.mu.Unlock()
	if now.Before(retry) || today.Equal(tried) || (!held.IsZero() && !today.After(held)) {
		return
	}
	n := maxBackfillDays
	if held.IsZero() {
		n = 1 // nothing held yet: from the newest freeze on
	}
	rs, err := mp.freezes(ctx, m, held, n)
	if err != nil && len(rs) == 0 {
		b.mu.Lock()
		m.memRetry = now.Add(memoryRetry)
		b.mu.Unlock()
		b.log.WithField("meter", m.cfg.ID).WithError(err).Warn("meter memory not read; next try in an hour")
		return
	}
	if len(rs) == 0 {
		// Nothing newer (not frozen yet, or a clock that disagrees with
		// its freezes): once a meter day, not every poll.
		b.mu.Lock()
		m.memTried = today
		b.mu.Unlock()
	}
	b.sendStored(m, rs)
}

// sendStored delivers values read from a meter's memory, oldest first, and
// moves the meter's held date forward.
func (b *Bus) sendStored(m *meterState, rs []reading.Reading) {
	for i := len(rs) - 1; i >= 0; i-- {
		b.sink.Reading(rs[i], reading.KindBilling)
		if rs[i].Storage == 0 {
			b.mu.Lock()
			if rs[i].MeterTime.After(m.memHeld) {
				m.memHeld = rs[i].MeterTime
			}
			b.mu.Unlock()
		}
	}
	if len(rs) > 0 {
		b.log.WithField("meter", m.cfg.ID).WithField("values", len(rs)).Info("values read from the meter's memory")
	}
}

// Backfill reads what a meter stored between from and to (its own clock,
// inclusive) and sends it as historical records from its memory: the daily
// freezes of those days and, for a meter that has them, the settlement-day
// volumes dated in the range. It returns what it sent. Between polls, like
// ReadNow.
func (b *Bus) Backfill(ctx context.Context, meterID string, from, to time.Time) ([]reading.Reading, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("backfill: to %s is before from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	v, err := b.do(ctx, meterID, func(ctx context.Context, p poller, m *meterState) (any, error) {
		mp, ok := p.(memoryPoller)
		if !ok {
			return nil, fmt.Errorf("meter %s: %w", m.cfg.ID, ErrNoMemory)
		}
		// Freezes are newest first: read back until one older than from.
		rs, err := mp.freezes(ctx, m, from.Add(-time.Nanosecond), pcjt.FreezeDepth)
		var keep []reading.Reading
		for _, r := range rs {
			if !r.MeterTime.After(to) {
				keep = append(keep, r)
			}
		}
		if err == nil {
			b.mu.Lock()
			meterNow := m.last.MeterTime
			b.mu.Unlock()
			ss, serr := mp.settlements(ctx, m, meterNow)
			for _, s := range ss {
				if s.Has&reading.HasMeterTime != 0 && !s.MeterTime.Before(from) && !s.MeterTime.After(to) {
					keep = append(keep, s)
				}
			}
			if serr != nil && !errors.Is(serr, dcjt.ErrRefused) && !errors.Is(serr, dcjt.ErrTimeout) {
				err = serr // a meter without settlement volumes still gives its freezes
			}
		}
		b.sendStored(m, keep)
		return keep, err
	})
	rs, _ := v.([]reading.Reading)
	return rs, err
}

// do runs fn on the bus goroutine between polls, with the line.
func (b *Bus) do(ctx context.Context, meterID string, fn func(context.Context, poller, *meterState) (any, error)) (any, error) {
	req := readReq{ctx: ctx, meter: meterID, job: fn, reply: make(chan readResult, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return nil, fmt.Errorf("bus %s is busy or not open: %w", b.cfg.Name, link.NotSent(ctx.Err()))
	}
	res, err := b.await(req)
	return res.v, err
}
