package simulator

import (
	"time"

	"tidegate/protocol/cjt188"
	"tidegate/simulator/water"
)

// A simulated CJ/T 188 meter freezes its total at every midnight of its own
// clock, as a meter of the 2018 edition keeps its daily freezes (D300 the
// newest, up to 256), whether or not anyone asks. The water model only
// moves when asked, so the days that passed since the last request are
// frozen on the next one, each from the model advanced to exactly that
// midnight: what a master reads back is the model's own total then, the
// ground truth DailyFreezes reports.

// DailyFreeze is one stored daily value: the meter-clock midnight and the
// total the meter showed then.
type DailyFreeze struct {
	Time   time.Time // the meter's own clock
	Volume float64   // m3, as the meter shows it (two decimals)
	Flow   float64   // m3/h
}

type dailyMemory struct {
	started bool
	day     time.Time     // meter-clock midnight of the newest freeze (or of the start)
	days    []DailyFreeze // newest first
}

// freezeDays freezes every meter-clock midnight up to now. Caller holds m.mu.
func (m *CJTMeter) freezeDays(now time.Time) { m.memory.freeze(now, m.state, m.meterTime, m.total) }

// freeze records every midnight of the meter's clock (meterTime of a
// snapshot) up to now, each from the model advanced to that midnight.
func (mem *dailyMemory) freeze(now time.Time, state SnapshotFunc, meterTime func(water.Snapshot) time.Time, total func(water.Snapshot) float64) {
	cur := state(time.Time{}) // the model as it stands, not advanced
	if cur.Time.IsZero() {
		return
	}
	offset := meterTime(cur).Sub(cur.Time)
	if !mem.started {
		mem.started = true
		t := meterTime(cur)
		mem.day = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	}
	if gap := now.Add(offset).Sub(mem.day); gap > 2*cjt188.FreezeDepth*24*time.Hour {
		// Only the newest FreezeDepth days can be read back: skip the rest.
		t := mem.day.Add(gap - cjt188.FreezeDepth*24*time.Hour)
		mem.day = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	}
	for {
		next := mem.day.AddDate(0, 0, 1)
		at := next.Add(-offset) // simulation time of the meter's midnight
		if at.After(now) {
			return
		}
		s := state(at)
		mem.days = append([]DailyFreeze{{Time: next, Volume: total(s), Flow: s.Flow}}, mem.days...)
		if len(mem.days) > cjt188.FreezeDepth {
			mem.days = mem.days[:cjt188.FreezeDepth]
		}
		mem.day = next
	}
}

// oldestFirst is a copy of the days, oldest first.
func (mem *dailyMemory) oldestFirst() []DailyFreeze {
	out := make([]DailyFreeze, len(mem.days))
	for i, d := range mem.days {
		out[len(out)-1-i] = d
	}
	return out
}

// freezeReply is the body of a D3xx (timed: the daily freezes) or D4xx
// (instant: none kept) reply; a slot never written is all zeros.
func (m *CJTMeter) freezeReply(di cjt188.DI) ([]byte, error) {
	var f cjt188.Freeze
	if i := int(di - cjt188.DIFreezeTimed); di < cjt188.DIFreezeInstant && i < len(m.memory.days) {
		d := m.memory.days[i]
		f = cjt188.Freeze{
			Time:   cjt188.Clock{Year: d.Time.Year(), Month: int(d.Time.Month()), Day: d.Time.Day()},
			Volume: cjt188.Quantity{Value: d.Volume, Unit: cjt188.UnitM3},
			Flow:   cjt188.Quantity{Value: max(d.Flow, 0), Unit: cjt188.UnitM3h},
		}
	}
	return cjt188.AppendFreeze(nil, f, m.cfg.Clock)
}

// DailyFreezes is what the meter has frozen so far, oldest first.
func (m *CJTMeter) DailyFreezes() []DailyFreeze {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memory.oldestFirst()
}

// ClockSets is how many A015 writes the meter accepted.
func (m *CJTMeter) ClockSets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clockSets
}

// CJTMeter returns a simulated CJ/T 188 meter by id, for tests that check
// its memory and clock against what a master did.
func (s *Sim) CJTMeter(id string) (*CJTMeter, bool) { return innerMeter[*CJTMeter](s, id) }

// innerMeter finds the simulated meter id behind its fault layer as a T.
func innerMeter[T any](s *Sim, id string) (T, bool) {
	var zero T
	sm := s.meters[id]
	if sm == nil {
		return zero, false
	}
	f, ok := sm.resp.(*faulty)
	if !ok {
		return zero, false
	}
	c, ok := f.inner.(T)
	return c, ok
}
