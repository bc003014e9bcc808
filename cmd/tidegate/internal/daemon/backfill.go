package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/reading"
)

// memoryMarks keeps, per meter with backfill, the meter-clock date of the
// newest daily freeze sent from its memory, so a restarted bus reads only
// the days after it (drivers/backfill.go). In memory it moves when a bus
// hands the value over (a reload restarting the bus reads nothing twice);
// in the buffer's side state ("backfill/<meter>") only once the value is
// committed, so a crash in between reads that day again rather than
// losing it: a duplicate, with the same meter, meter_time and source, that
// receivers key historical values on.
type memoryMarks struct {
	buf *buffer.Buffer
	log *logrus.Logger

	mu    sync.Mutex
	mem   map[string]time.Time // handed over
	saved map[string]time.Time // committed and written
}

func newMemoryMarks(log *logrus.Logger) *memoryMarks {
	return &memoryMarks{log: log, mem: map[string]time.Time{}, saved: map[string]time.Time{}}
}

// use points the marks at the buffer of the data path now open (a reload
// may open another file): what was saved in the old one is read again from
// the new one where it is there.
func (m *memoryMarks) use(buf *buffer.Buffer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = buf
	clear(m.saved)
}

func markKey(meter string) string { return "backfill/" + meter }

func daily(r *reading.Reading) bool {
	return r != nil && r.Source == reading.SourceMeterMemory && r.Storage == 0 && r.Has&reading.HasMeterTime != 0
}

// held is where a bus starting now resumes for meter.
func (m *memoryMarks) held(meter string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.mem[meter]; ok {
		return t
	}
	v, err := m.buf.State(markKey(meter))
	if err != nil || v == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, string(v))
	if err != nil {
		m.log.WithField("meter", meter).WithError(err).Warn("backfill mark unreadable; starting from the meter's newest freeze")
		return time.Time{}
	}
	m.mem[meter], m.saved[meter] = t, t
	return t
}

// sent notes a daily value a bus handed over.
func (m *memoryMarks) sent(r reading.Reading) {
	if !daily(&r) {
		return
	}
	m.mu.Lock()
	if r.MeterTime.After(m.mem[r.Meter]) {
		m.mem[r.Meter] = r.MeterTime
	}
	m.mu.Unlock()
}

// stored writes the mark once the value is committed (the pipeline's owner
// calls it after each commit).
func (m *memoryMarks) stored(rec reading.Record) {
	r := rec.Reading
	if !daily(r) {
		return
	}
	m.mu.Lock()
	newer := r.MeterTime.After(m.saved[r.Meter])
	if newer {
		m.saved[r.Meter] = r.MeterTime
	}
	buf := m.buf
	m.mu.Unlock()
	if !newer || buf == nil {
		return
	}
	if err := buf.PutState(markKey(r.Meter), []byte(r.MeterTime.Format(time.RFC3339))); err != nil {
		m.log.WithField("meter", r.Meter).WithError(err).Warn("backfill mark not written; the day may be sent again after a restart")
	}
}

// Backfill reads a meter's stored values between from and to (downlink
// "backfill"); they are also sent as records from the meter's memory.
func (c commands) Backfill(ctx context.Context, meter string, from, to time.Time) (any, error) {
	cfg := c.d.config()
	m, ok := cfg.MeterByID(meter)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMeter, meter)
	}
	c.d.mu.Lock()
	b := c.d.buses[m.Bus]
	c.d.mu.Unlock()
	if b == nil || b.bus == nil {
		return nil, fmt.Errorf("bus %q of meter %q is not running", m.Bus, m.ID)
	}
	rs, err := b.bus.Backfill(ctx, m.ID, from, to)
	out := make([]reading.RecordJSON, 0, len(rs))
	for i := range rs {
		out = append(out, reading.ToJSON("", reading.Record{Kind: reading.KindBilling, Reading: &rs[i]}))
	}
	res := map[string]any{"meter": m.ID, "from": from.UTC(), "to": to.UTC(), "values": out}
	if err != nil && len(out) == 0 {
		return nil, err
	}
	if err != nil {
		res["error"] = err.Error()
	}
	return res, nil
}
