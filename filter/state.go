package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"tidegate/reading"
)

// ErrState reports per-meter state bytes that cannot be restored.
var ErrState = errors.New("filter: bad state")

const stateVersion = 4

// State returns one meter's state as bytes, for the daemon to persist
// through the buffer's side-state: learned parameters, counters, and the
// intervals still held back (so a restart loses none). About 530 bytes plus
// about 80 a held-back interval. Nil for a meter never seen.
func (f *Filter) State(meter string) ([]byte, error) {
	m := f.meters[meter]
	if m == nil {
		return nil, nil
	}
	return m.MarshalBinary()
}

// SetState restores a meter's state saved by State, replacing what the
// filter holds for it.
func (f *Filter) SetState(meter string, b []byte) error {
	m := newMeter(meter, &f.cfg)
	if err := m.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("meter %s: %w", meter, err)
	}
	f.meters[meter] = m
	return nil
}

func (f *Filter) ids() []string {
	ids := make([]string, 0, len(f.meters))
	for id := range f.meters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

type enc struct{ b []byte }

func (e *enc) u64(v uint64)  { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) i64(v int64)   { e.u64(uint64(v)) }
func (e *enc) f64(v float64) { e.u64(math.Float64bits(v)) }
func (e *enc) f32(v float32) { e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(v)) }
func (e *enc) u16(v uint16)  { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = fmt.Errorf("%w: truncated", ErrState)
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}
func (d *dec) u64() uint64  { return binary.LittleEndian.Uint64(d.take(8)) }
func (d *dec) i64() int64   { return int64(d.u64()) }
func (d *dec) f64() float64 { return math.Float64frombits(d.u64()) }
func (d *dec) f32() float32 { return math.Float32frombits(binary.LittleEndian.Uint32(d.take(4))) }
func (d *dec) u16() uint16  { return binary.LittleEndian.Uint16(d.take(2)) }
func (d *dec) bool() bool   { return d.take(1)[0] != 0 }

// MarshalBinary encodes the meter's state (not its id).
func (m *meter) MarshalBinary() ([]byte, error) {
	e := &enc{b: make([]byte, 0, 320+80*len(m.pending))}
	e.b = append(e.b, stateVersion)
	e.bool(m.init)
	e.i64(m.lastT)
	e.f64(m.lastF)
	e.f64(m.lastR)
	e.f64(m.res)
	e.bool(m.resSeen)
	e.f64(m.ratio)
	l := &m.learn
	for _, c := range l.chunks {
		e.f32(c.f)
		e.f32(c.r)
	}
	e.b = append(e.b, l.n, l.next)
	e.i64(l.lastRev)
	e.f64(l.fSince)
	e.f64(l.f)
	e.f64(l.r)
	e.i64(l.dur)
	e.f64(l.baseVol)
	e.i64(l.baseDur)
	for _, b := range l.base {
		e.f32(b)
	}
	e.b = append(e.b, l.baseNext)
	e.f64(m.credit.fwd)
	e.i64(m.credit.fwdT)
	e.f64(m.credit.rev)
	e.i64(m.credit.revT)
	e.bool(m.learned)
	e.i64(m.lastRevT)
	e.f64(m.stuckVol)
	e.i64(m.lastConsT)
	e.bool(m.noUse)
	e.i64(m.lastBackT)
	e.f64(m.backVol)
	b := &m.burst
	e.i64(b.start)
	e.f64(b.vol)
	e.b = append(e.b, b.above)
	e.bool(b.fresh)
	e.bool(b.on)
	k := &m.leak
	e.bool(k.on)
	e.bool(k.inNight)
	e.f64(k.vol)
	e.i64(k.covered)
	e.i64(k.lastUse)
	e.i64(k.maxGap)
	e.i64(k.nightEnd)
	for _, v := range k.hourF {
		e.f64(v)
	}
	for _, v := range k.hourC {
		e.f64(v)
	}
	e.u16(k.nFlow)
	e.u16(k.nPos)
	e.u16(k.nAbove)
	d := &m.day
	e.i64(d.start)
	e.i64(d.end)
	for _, v := range []float64{d.cons, d.ph, d.back, d.night[0], d.night[1], d.peak} {
		e.f64(v)
	}
	e.bool(d.nightSeen[0])
	e.bool(d.nightSeen[1])
	e.u64(uint64(d.hours))
	e.u16(uint16(d.flags))
	e.bool(d.any)
	// version 3: the monotonic timeline and the backflow episode
	e.i64(m.clockOff)
	e.i64(m.lastGap)
	e.i64(m.lastRecv)
	e.i64(m.backStart)
	e.bool(m.backBy)
	e.bool(m.backSent)
	// version 4: the backflow's evidence, the surge beside it, the run of
	// backwards flow readings
	e.f64(m.backSurge)
	e.f64(m.surgeRev)
	e.i64(m.surgeT)
	e.b = append(e.b, byte(m.backEv))
	e.u16(m.run.n)
	e.f64(m.run.lo)
	e.f64(m.run.hi)
	e.f64(m.run.last)
	e.i64(m.run.start)
	e.i64(m.run.fwdT)
	e.i64(m.run.ended)
	e.i64(m.run.endT)
	e.f64(m.prevFlow)
	e.u64(uint64(len(m.pending)))
	for i := range m.pending {
		it := &m.pending[i]
		e.i64(it.start)
		e.i64(it.t)
		for _, v := range []float64{it.dF, it.dR, it.uf, it.ur, it.pf, it.ratio, it.r.Forward, it.r.Reverse, it.r.Flow} {
			e.f64(v)
		}
		e.u16(uint16(it.flags))
		e.u16(uint16(it.r.Has))
		e.u16(uint16(it.r.Status))
		e.b = append(e.b, byte(it.r.Quality))
		e.f64(it.flowBack)
		e.f64(it.steady)
		e.bool(it.flowOK)
	}
	return e.b, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (m *meter) UnmarshalBinary(b []byte) error {
	d := &dec{b: b}
	v := d.take(1)[0]
	if d.err == nil && (v < 1 || v > stateVersion) {
		return fmt.Errorf("%w: version %d, want %d", ErrState, v, stateVersion)
	}
	v1 := v == 1 // before the span learner: its learner is dropped, all else kept
	m.init = d.bool()
	m.lastT = d.i64()
	m.lastF, m.lastR, m.res = d.f64(), d.f64(), d.f64()
	m.resSeen = d.bool()
	m.ratio = d.f64()
	l := &m.learn
	if v1 {
		// 8 episode samples, their count, the open episode and the pool:
		// no use to the span learner, which starts afresh from the
		// ratio the old one had learned.
		d.take(8*8 + 2 + 1 + 3*8 + 2*8 + 3*8)
	} else {
		for i := range l.chunks {
			l.chunks[i] = chunk{f: d.f32(), r: d.f32()}
		}
		nn := d.take(2)
		l.n, l.next = nn[0], nn[1]
		l.lastRev = d.i64()
		l.fSince, l.f, l.r = d.f64(), d.f64(), d.f64()
		l.dur = d.i64()
	}
	l.baseVol = d.f64()
	l.baseDur = d.i64()
	for i := range l.base {
		l.base[i] = d.f32()
	}
	l.baseNext = d.take(1)[0]
	m.credit.fwd = d.f64()
	m.credit.fwdT = d.i64()
	if v1 {
		m.learned = true // keep the old learner's ratio until the new one has its own
	} else {
		m.credit.rev = d.f64()
		m.credit.revT = d.i64()
		m.learned = d.bool()
	}
	m.lastRevT = d.i64()
	m.stuckVol = d.f64()
	m.lastConsT = d.i64()
	m.noUse = d.bool()
	m.lastBackT = d.i64()
	m.backVol = d.f64()
	bs := &m.burst
	bs.start, bs.vol = d.i64(), d.f64()
	bs.above = d.take(1)[0]
	bs.fresh, bs.on = d.bool(), d.bool()
	k := &m.leak
	k.on, k.inNight = d.bool(), d.bool()
	k.vol = d.f64()
	k.covered, k.lastUse, k.maxGap, k.nightEnd = d.i64(), d.i64(), d.i64(), d.i64()
	for i := range k.hourF {
		k.hourF[i] = d.f64()
	}
	for i := range k.hourC {
		k.hourC[i] = d.f64()
	}
	if !v1 {
		k.nFlow, k.nPos, k.nAbove = d.u16(), d.u16(), d.u16()
	}
	ds := &m.day
	ds.start, ds.end = d.i64(), d.i64()
	ds.cons, ds.ph, ds.back, ds.night[0], ds.night[1], ds.peak = d.f64(), d.f64(), d.f64(), d.f64(), d.f64(), d.f64()
	ds.nightSeen[0], ds.nightSeen[1] = d.bool(), d.bool()
	ds.hours = uint32(d.u64())
	ds.flags = reading.FilterFlags(d.u16())
	ds.any = d.bool()
	if v >= 3 {
		m.clockOff, m.lastGap, m.lastRecv, m.backStart = d.i64(), d.i64(), d.i64(), d.i64()
		m.backBy, m.backSent = d.bool(), d.bool()
	} else {
		// Before version 3 the backflow event went out when an episode
		// reached 3 steps or 5 L.
		m.backStart = m.lastBackT
		m.backSent = m.backVol >= max(3*m.res, 0.005)
	}
	if v >= 4 {
		m.backSurge, m.surgeRev, m.surgeT = d.f64(), d.f64(), d.i64()
		m.backEv = evidence(d.take(1)[0])
		m.run.n = d.u16()
		m.run.lo, m.run.hi, m.run.last = d.f64(), d.f64(), d.f64()
		m.run.start, m.run.fwdT, m.run.ended, m.run.endT = d.i64(), d.i64(), d.i64(), d.i64()
		m.prevFlow = d.f64()
	}
	n := d.u64()
	if d.err != nil {
		return d.err
	}
	itemBytes := 8*11 + 7
	if v >= 4 {
		itemBytes += 8*2 + 1
	}
	if n > uint64(len(d.b)/itemBytes) {
		return fmt.Errorf("%w: %d held-back intervals in %d bytes", ErrState, n, len(d.b))
	}
	m.pending = make([]item, n)
	for i := range m.pending {
		it := &m.pending[i]
		it.start, it.t = d.i64(), d.i64()
		it.dF, it.dR, it.uf, it.ur, it.pf, it.ratio = d.f64(), d.f64(), d.f64(), d.f64(), d.f64(), d.f64()
		it.r = reading.Reading{Meter: m.id, Received: time.Unix(0, it.t).UTC(), Forward: d.f64(), Reverse: d.f64(), Flow: d.f64()}
		it.flags = reading.FilterFlags(d.u16())
		it.r.Has = reading.Field(d.u16())
		it.r.Status = reading.Status(d.u16())
		it.r.Quality = reading.Quality(d.take(1)[0])
		if v >= 4 {
			it.flowBack, it.steady, it.flowOK = d.f64(), d.f64(), d.bool()
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrState, len(d.b))
	}
	if l.n > chunkSlots || l.next >= chunkSlots || l.baseNext >= baseSlots {
		return fmt.Errorf("%w: ratio chunk %d/%d or baseline slot %d out of range", ErrState, l.next, l.n, l.baseNext)
	}
	if m.backEv > evFlow || !(m.backSurge >= 0) || !(m.surgeRev >= 0) {
		return fmt.Errorf("%w: backflow evidence %d or surge volume out of range", ErrState, m.backEv)
	}
	if !(m.ratio >= ratioMin/2 && m.ratio <= ratioMax*2) || !(m.res > 0 && m.res < 1) {
		return fmt.Errorf("%w: ratio %v or resolution %v out of range", ErrState, m.ratio, m.res)
	}
	return nil
}
