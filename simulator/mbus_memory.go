package simulator

import (
	"time"

	"tidegate/protocol/mbus"
	"tidegate/simulator/water"
)

// A simulated M-Bus meter keeps daily freezes like the CJ/T 188 one (the
// total at each midnight of its clock, cjt188_memory.go) and sends the
// newest mbusHistoryDays of them as historic values: storage numbers from
// 2 up (the flowIQ model in its second telegram, from 3, its storage 2
// being the day's flow extremes), each a volume and a type G date of the
// same storage number, as loggers of real meters do. A SND_UD (CI 51) with
// a type F date-time record (DIF 04, VIF 6D) sets its clock.

// mbusHistoryDays is how many daily values a REQ_UD2 answer carries.
const mbusHistoryDays = 7

func (m *MBusMeter) frozenTotal(s water.Snapshot) float64 { return litres(s.Forward) }

// storageDIB is the DIB of a record with storage number n (EN 13757-3:
// its lowest bit in the DIF, the next four in a DIFE).
func storageDIB(dif byte, n int) []byte {
	dif |= byte(n&1) << 6
	if n < 2 {
		return []byte{dif}
	}
	return []byte{dif | 0x80, byte(n>>1) & 0x0F}
}

// historyRecords is the newest daily freezes from storage number first on.
func (m *MBusMeter) historyRecords(first int) []mbus.Record {
	var out []mbus.Record
	for i, d := range m.memory.days {
		if i == mbusHistoryDays {
			break
		}
		n := first + i
		out = append(out,
			rec(storageDIB(0x04, n), []byte{0x13}, mbus.Number(d.Volume)),
			rec(storageDIB(0x02, n), []byte{0x6C}, mbus.Date(d.Time)))
	}
	return out
}

// setClock moves the meter clock to t at simulation time now.
func (m *MBusMeter) setClock(t, now time.Time) {
	s := m.state(now)
	m.clockShift += t.Sub(m.meterClock(s))
	m.clockSets++
}

// DailyFreezes is what the meter has frozen so far, oldest first.
func (m *MBusMeter) DailyFreezes() []DailyFreeze {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memory.oldestFirst()
}

// ClockSets is how many set-time writes the meter accepted.
func (m *MBusMeter) ClockSets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clockSets
}

// MBusMeter returns a simulated M-Bus meter by id, for tests.
func (s *Sim) MBusMeter(id string) (*MBusMeter, bool) { return innerMeter[*MBusMeter](s, id) }
