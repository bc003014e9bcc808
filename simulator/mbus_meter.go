package simulator

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"tidegate/protocol/mbus"
	"tidegate/reading"
	"tidegate/simulator/water"
)

// M-Bus telegram layouts the simulator can play.
const (
	// MBusModelFlowIQ is Kamstrup flowIQ-like: two telegrams (current values
	// with DIF 1F, then max/min flow and manufacturer data).
	MBusModelFlowIQ = "flowiq"
	// MBusModelUltrimis is Apator Ultrimis-like: one telegram with FD 17
	// error flags, battery voltage and a backward-flow register.
	MBusModelUltrimis = "ultrimis"
	// MBusModelReplay answers with telegrams read from a hex file.
	MBusModelReplay = "replay"
)

// ErrMBusModel is returned for an unknown model or a bad replay file.
var ErrMBusModel = errors.New("bad M-Bus meter model")

// MBusMeterConfig describes one simulated M-Bus slave.
type MBusMeterConfig struct {
	ID      string
	Address byte // primary address 1..250
	Model   string
	// Secondary is the 8-digit identification number; empty derives one
	// from ID.
	Secondary string
	// Manufacturer is the 3-letter code; empty uses the model's (KAM, APA).
	Manufacturer string
	// Replay holds the telegrams of MBusModelReplay, in answer order.
	Replay [][]byte
}

// MBusMeter is an EN 13757-2/-3 slave: SND_NKE, REQ_UD2 with FCB, primary
// and secondary addressing (with wildcards), SND_UD to change the primary
// address, multi-telegram answers. Values come from the water model.
type MBusMeter struct {
	ID     string
	model  string
	state  func(time.Time) water.Snapshot
	header mbus.Header
	replay [][]byte

	mu       sync.Mutex
	address  byte
	selected bool
	fcbValid bool
	lastFCB  bool
	// index is the telegram last sent; a request with toggled FCB asks
	// for the next, an unchanged FCB repeats it.
	index int
	// target is the billing value: the forward total when the meter's
	// clock last crossed midnight (stored as storage 1).
	target     float64
	targetDate time.Time
	maxFlow    float64
	minFlow    float64
	// memory is the daily freezes (mbus_memory.go); clockShift is what a
	// set-time (SND_UD, type F) moved the meter clock by.
	memory     dailyMemory
	clockShift time.Duration
	clockSets  int
}

// NewMBusMeter makes a slave. state gives the meter's electronics at a time.
func NewMBusMeter(cfg MBusMeterConfig, state func(time.Time) water.Snapshot) (*MBusMeter, error) {
	m := &MBusMeter{ID: cfg.ID, model: cfg.Model, state: state, address: cfg.Address, index: -1}
	h := mbus.Header{Long: true, ID: cfg.Secondary, Manufacturer: cfg.Manufacturer, Medium: mbus.MediumWater}
	if h.ID == "" {
		f := fnv.New32a()
		f.Write([]byte(cfg.ID))
		h.ID = fmt.Sprintf("%08d", f.Sum32()%100000000)
	}
	if len(h.ID) != 8 || strings.Trim(h.ID, "0123456789") != "" {
		return nil, fmt.Errorf("%w: secondary address %q is not 8 digits", ErrMBusModel, h.ID)
	}
	switch cfg.Model {
	case MBusModelFlowIQ, "":
		m.model = MBusModelFlowIQ
		h.Version, h.Medium = 0x1B, mbus.MediumColdWater
		if h.Manufacturer == "" {
			h.Manufacturer = "KAM"
		}
	case MBusModelUltrimis:
		h.Version = 0x01
		if h.Manufacturer == "" {
			h.Manufacturer = "APA"
		}
	case MBusModelReplay:
		if len(cfg.Replay) == 0 {
			return nil, fmt.Errorf("%w: replay without telegrams", ErrMBusModel)
		}
		for i, t := range cfg.Replay {
			f, n, err := mbus.Decode(t)
			if err != nil || n != len(t) || f.Kind != mbus.KindLong {
				return nil, fmt.Errorf("%w: replay telegram %d is not one long frame: %v", ErrMBusModel, i+1, err)
			}
			tg, err := mbus.DecodeTelegram(f)
			if err != nil {
				return nil, fmt.Errorf("%w: replay telegram %d: %v", ErrMBusModel, i+1, err)
			}
			if i == 0 && tg.Header.Long {
				// Secondary addressing selects by what the telegram says.
				h = tg.Header
			}
		}
		m.replay = cfg.Replay
	default:
		return nil, fmt.Errorf("%w: %q, want %s, %s or %s", ErrMBusModel, cfg.Model, MBusModelFlowIQ, MBusModelUltrimis, MBusModelReplay)
	}
	if mbus.ManufacturerCode(h.Manufacturer) == 0 {
		return nil, fmt.Errorf("%w: manufacturer %q is not 3 letters", ErrMBusModel, h.Manufacturer)
	}
	m.header = h
	return m, nil
}

// ReadReplayFile reads telegrams for MBusModelReplay: one frame per
// non-empty line, as hex bytes with or without spaces; '#' starts a comment.
func ReadReplayFile(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		if k := strings.IndexByte(line, '#'); k >= 0 {
			line = line[:k]
		}
		hexText := strings.Join(strings.Fields(line), "")
		if hexText == "" {
			continue
		}
		b, err := decodeHex(hexText)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func decodeHex(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of hex digits", ErrMBusModel)
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		var v byte
		for _, c := range []byte(s[2*i : 2*i+2]) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			case c >= 'A' && c <= 'F':
				v = v<<4 | (c - 'A' + 10)
			default:
				return nil, fmt.Errorf("%w: %q is not hex", ErrMBusModel, c)
			}
		}
		out[i] = v
	}
	return out, nil
}

// newMBusMeter builds the M-Bus slave of a simulator configuration.
func newMBusMeter(mc MeterConfig, state SnapshotFunc, start time.Time) (Responder, error) {
	cfg := MBusMeterConfig{ID: mc.ID, Address: byte(mc.Address), Model: mc.Model, Secondary: mc.Secondary,
		Manufacturer: mc.Manufacturer}
	if mc.Model == MBusModelReplay {
		if mc.Replay == "" {
			return nil, fmt.Errorf("%w: model replay needs a replay file", ErrMBusModel)
		}
		var err error
		if cfg.Replay, err = ReadReplayFile(mc.Replay); err != nil {
			return nil, err
		}
	}
	m, err := NewMBusMeter(cfg, state)
	if err != nil {
		return nil, err
	}
	m.clockShift = time.Duration(mc.CJT.ClockOffset) // clock_offset: a clock set wrong
	return m, nil
}

// Address is the primary address, which SND_UD can change.
func (m *MBusMeter) Address() byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.address
}

// Header is the identification the meter answers with.
func (m *MBusMeter) Header() mbus.Header { return m.header }

// Respond answers one request frame; nil means silence (not addressed,
// broadcast, or not a valid frame: a real slave ignores line noise).
func (m *MBusMeter) Respond(req []byte, now time.Time) []byte {
	f, n, err := mbus.Decode(req)
	if err != nil || n != len(req) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model != MBusModelReplay {
		m.memory.freeze(now, m.state, m.meterClock, m.frozenTotal) // before anything advances the model past a midnight
	}
	addr := f.Address
	me := addr == m.address || addr == mbus.AddrTest || (addr == mbus.AddrNetworkLayer && m.selected)
	broadcast := addr == mbus.AddrBroadcast
	switch {
	case f.Kind == mbus.KindShort && f.C.IsSndNke():
		if !me && !broadcast {
			return nil
		}
		m.fcbValid, m.index = false, -1
		if addr == mbus.AddrNetworkLayer {
			m.selected = false
		}
		if broadcast {
			return nil
		}
		return []byte{mbus.Ack}
	case f.Kind == mbus.KindShort && f.C.IsReqUd2():
		if !me {
			return nil
		}
		return m.telegram(f.C, now)
	case f.Kind == mbus.KindShort && f.C.Function() == mbus.CReqUd1&^(mbus.FCB|mbus.FCV):
		if !me {
			return nil
		}
		return []byte{mbus.Ack} // no alarm data waiting
	case (f.Kind == mbus.KindLong || f.Kind == mbus.KindControl) && f.C.IsSndUd():
		if addr == mbus.AddrNetworkLayer && f.CI == 0x52 {
			m.selected = m.matchSecondary(f.Data)
			if m.selected {
				return []byte{mbus.Ack}
			}
			return nil
		}
		if !me && !broadcast {
			return nil
		}
		m.sndUd(f, now)
		if broadcast {
			return nil
		}
		return []byte{mbus.Ack}
	}
	return nil
}

// sndUd handles data sent to the meter: CI 51 with the bus address record
// (DIF 01, VIF 7A) sets a new primary address; CI 50 resets the application
// (the next REQ_UD2 starts from the first telegram).
func (m *MBusMeter) sndUd(f mbus.Frame, now time.Time) {
	switch f.CI {
	case 0x50:
		m.fcbValid, m.index = false, -1
	case 0x51:
		rs, err := mbus.ParseRecords(f.Data)
		if err != nil {
			return
		}
		for _, r := range rs {
			if bytes.Equal(r.VIB, []byte{0x7A}) && r.Value.IsInt && r.Value.Int >= 1 && r.Value.Int <= 250 {
				m.address = byte(r.Value.Int)
			}
			if m.model != MBusModelReplay && bytes.Equal(r.VIB, []byte{0x6D}) && r.Value.Kind == mbus.ValueDateTime && !r.Value.Invalid {
				m.setClock(r.Value.Time, now)
			}
		}
	}
}

// matchSecondary compares a CI 52 selection (ident, manufacturer, version,
// medium) with the meter's, honouring wildcards: F per ident digit, FFFF
// for the manufacturer, FF for version and medium.
func (m *MBusMeter) matchSecondary(sel []byte) bool {
	if len(sel) != 8 {
		return false
	}
	own := mbus.AppendLongHeader(nil, m.header)
	for i := 0; i < 4; i++ {
		for _, shift := range []uint{0, 4} {
			s := sel[i] >> shift & 0x0F
			if s != 0x0F && s != own[i]>>shift&0x0F {
				return false
			}
		}
	}
	if !(sel[4] == 0xFF && sel[5] == 0xFF) && (sel[4] != own[4] || sel[5] != own[5]) {
		return false
	}
	for i := 6; i < 8; i++ {
		if sel[i] != 0xFF && sel[i] != own[i] {
			return false
		}
	}
	return true
}

// telegram picks the telegram for a REQ_UD2: the next one when the FCB
// toggled (or is not yet valid), the same one again when it did not.
func (m *MBusMeter) telegram(c mbus.CField, now time.Time) []byte {
	count := m.telegramCount()
	if !m.fcbValid || c.FCB() != m.lastFCB || m.index < 0 {
		m.index = (m.index + 1) % count
		m.header.AccessNumber++
	}
	m.fcbValid, m.lastFCB = true, c.FCB()
	if m.model == MBusModelReplay {
		f, _, _ := mbus.Decode(m.replay[m.index]) // checked in NewMBusMeter
		f.Address = m.address
		out, _ := mbus.Encode(f)
		return out
	}
	s := m.state(now)
	m.observe(s)
	var rs []mbus.Record
	switch m.model {
	case MBusModelUltrimis:
		rs = m.ultrimisRecords(s)
	default:
		rs = m.flowIQRecords(s, m.index)
	}
	h := m.header
	h.Status = statusByte(s.Status)
	out, err := mbus.EncodeRspUd(m.address, false, h, rs)
	if err != nil {
		return nil // a layout bug; silence is what the master would see
	}
	return out
}

func (m *MBusMeter) telegramCount() int {
	switch m.model {
	case MBusModelReplay:
		return len(m.replay)
	case MBusModelFlowIQ:
		return 2
	}
	return 1
}

// observe keeps the billing value and the flow extremes since it, as the
// meter's own electronics would.
func (m *MBusMeter) observe(s water.Snapshot) {
	clock := m.meterClock(s)
	day := time.Date(clock.Year(), clock.Month(), clock.Day(), 0, 0, 0, 0, time.UTC)
	if !day.Equal(m.targetDate) {
		m.target, m.targetDate = s.Forward, day
		m.maxFlow, m.minFlow = s.Flow, s.Flow
	}
	m.maxFlow = math.Max(m.maxFlow, s.Flow)
	m.minFlow = math.Min(m.minFlow, s.Flow)
}

// statusByte is the header status: bit 2 power low, bit 3 permanent error.
func statusByte(st reading.Status) byte {
	var b byte
	if st&reading.StatusLowBattery != 0 {
		b |= 0x04
	}
	if st&reading.StatusMeterError != 0 {
		b |= 0x08
	}
	return b
}

func rec(dib, vib []byte, v mbus.Value) mbus.Record { return mbus.Record{DIB: dib, VIB: vib, Value: v} }

func litres(m3 float64) float64 { return math.Round(m3*1000) / 1000 }

// meterClock is the meter's own clock: the model's, as set-time moved it.
func (m *MBusMeter) meterClock(s water.Snapshot) time.Time {
	t := s.MeterClock
	if t.IsZero() {
		t = s.Time
	}
	return t.UTC().Add(m.clockShift)
}

// flowIQRecords: telegram 0 holds the current values and ends with DIF 1F,
// telegram 1 the flow extremes of the day and manufacturer data.
func (m *MBusMeter) flowIQRecords(s water.Snapshot, index int) []mbus.Record {
	if index == 1 {
		return append(append([]mbus.Record{
			rec([]byte{0x92, 0x01}, []byte{0x3B}, mbus.Number(math.Round(m.maxFlow*1000)/1000)), // max flow, storage 2
			rec([]byte{0xA2, 0x01}, []byte{0x3B}, mbus.Number(math.Round(m.minFlow*1000)/1000)), // min flow, storage 2
		}, m.historyRecords(3)...), mbus.Record{Function: mbus.FuncManufacturer, Value: mbus.Bytes([]byte{0x02, 0x00})})
	}
	var info float64
	for _, b := range []struct {
		st  reading.Status
		bit uint
	}{{reading.StatusEmptyPipe, 0}, {reading.StatusReverseFlow, 1}, {reading.StatusLeak, 2},
		{reading.StatusBurst, 3}, {reading.StatusTamper, 4}, {reading.StatusLowBattery, 5}} {
		if s.Status&b.st != 0 {
			info += float64(uint32(1) << b.bit)
		}
	}
	return []mbus.Record{
		rec([]byte{0x04}, []byte{0x13}, mbus.Number(litres(s.Forward))),
		rec([]byte{0x04}, []byte{0x93, 0x3C}, mbus.Number(litres(s.Reverse))),
		rec([]byte{0x02}, []byte{0x3B}, mbus.Number(math.Round(s.Flow*1000)/1000)),
		rec([]byte{0x02}, []byte{0x65}, mbus.Number(math.Round(s.Temperature*100)/100)),
		rec([]byte{0x04}, []byte{0xFF, 0x23}, mbus.Number(info)),
		rec([]byte{0x04}, []byte{0x6D}, mbus.DateTime(m.meterClock(s).Truncate(time.Minute))),
		rec([]byte{0x44}, []byte{0x13}, mbus.Number(litres(m.target))),
		rec([]byte{0x42}, []byte{0x6C}, mbus.Date(m.targetDate)),
		{Function: mbus.FuncMoreRecords},
	}
}

// ultrimisRecords is one telegram with the flags word of Apator Ultrimis.
func (m *MBusMeter) ultrimisRecords(s water.Snapshot) []mbus.Record {
	var flags float64
	for _, b := range []struct {
		st  reading.Status
		bit uint
	}{{reading.StatusTamper, 0}, {reading.StatusLowBattery, 1}, {reading.StatusEmptyPipe, 2},
		{reading.StatusBurst, 5}, {reading.StatusReverseFlow, 6}, {reading.StatusLeak, 7}} {
		if s.Status&b.st != 0 {
			flags += float64(uint32(1) << b.bit)
		}
	}
	if s.Flow == 0 {
		flags += 0x08 // no flow
	}
	fab, _ := decodeHex(m.header.ID)
	fabNo := 0
	for _, b := range fab {
		fabNo = fabNo*100 + int(b>>4)*10 + int(b&0x0F)
	}
	return append([]mbus.Record{
		rec([]byte{0x0C}, []byte{0x78}, mbus.Value{Kind: mbus.ValueNumber, Int: int64(fabNo), IsInt: true}),
		rec([]byte{0x04}, []byte{0x13}, mbus.Number(litres(s.Forward))),
		rec([]byte{0x04}, []byte{0x93, 0x3C}, mbus.Number(litres(s.Reverse))),
		rec([]byte{0x03}, []byte{0x3B}, mbus.Number(math.Round(s.Flow*1000)/1000)),
		rec([]byte{0x02}, []byte{0x5A}, mbus.Number(math.Round(s.Temperature*10)/10)),
		rec([]byte{0x03}, []byte{0xFD, 0x17}, mbus.Number(flags)),
		rec([]byte{0x02}, []byte{0xFD, 0x46}, mbus.Number(float64(s.BatteryMV)/1000)),
		rec([]byte{0x04}, []byte{0x6D}, mbus.DateTime(m.meterClock(s).Truncate(time.Minute))),
		rec([]byte{0x4C}, []byte{0x13}, mbus.Number(litres(m.target))),
		rec([]byte{0x42}, []byte{0x6C}, mbus.Date(m.targetDate)),
	}, m.historyRecords(2)...)
}
