package simulator

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial"

	"tidegate/protocol/mbus"
	"tidegate/reading"
	"tidegate/simulator/water"
)

var mbusT0 = time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC)

func fixedSnapshot(s water.Snapshot) func(time.Time) water.Snapshot {
	return func(now time.Time) water.Snapshot {
		s.Time, s.MeterClock = now, now.Add(-90*time.Second)
		return s
	}
}

func decodeAnswer(t *testing.T, b []byte) mbus.Telegram {
	t.Helper()
	f, n, err := mbus.Decode(b)
	if err != nil || n != len(b) {
		t.Fatalf("answer % X: n=%d err=%v", b, n, err)
	}
	if !f.C.IsRspUd() {
		t.Fatalf("C 0x%02X is not RSP_UD", byte(f.C))
	}
	tg, err := mbus.DecodeTelegram(f)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func find(t *testing.T, tg mbus.Telegram, vib string, storage uint64) mbus.Record {
	t.Helper()
	for _, r := range tg.Records {
		if hexOf(r.VIB) == vib && r.Storage == storage && r.Function <= mbus.FuncError {
			return r
		}
	}
	t.Fatalf("no record with VIB %s storage %d", vib, storage)
	return mbus.Record{}
}

func hexOf(b []byte) string {
	const d = "0123456789ABCDEF"
	var s []byte
	for i, x := range b {
		if i > 0 {
			s = append(s, ' ')
		}
		s = append(s, d[x>>4], d[x&0x0F])
	}
	return string(s)
}

func TestMBusMeterLayouts(t *testing.T) {
	snap := water.Snapshot{Forward: 123.4567, Reverse: 0.0123, Flow: -0.012, Temperature: 11.25, BatteryMV: 3580,
		Status: reading.StatusReverseFlow | reading.StatusLowBattery}
	for _, model := range []string{MBusModelFlowIQ, MBusModelUltrimis} {
		t.Run(model, func(t *testing.T) {
			m, err := NewMBusMeter(MBusMeterConfig{ID: "m1", Address: 7, Model: model, Secondary: "12345678"}, fixedSnapshot(snap))
			if err != nil {
				t.Fatal(err)
			}
			tg := decodeAnswer(t, m.Respond(mbus.ShortFrame(mbus.CReqUd2|mbus.FCB, 7), mbusT0))
			if tg.Address != 7 || tg.Header.ID != "12345678" || tg.Header.AccessNumber != 1 || tg.Header.Status&0x04 == 0 {
				t.Errorf("header %+v address %d", tg.Header, tg.Address)
			}
			if got := find(t, tg, "13", 0).Value.Number; math.Abs(got-123.457) > 1e-9 {
				t.Errorf("forward %v", got)
			}
			if got := find(t, tg, "93 3C", 0).Value.Number; math.Abs(got-0.012) > 1e-9 {
				t.Errorf("reverse %v", got)
			}
			if got := find(t, tg, "3B", 0).Value.Number; math.Abs(got+0.012) > 1e-9 {
				t.Errorf("flow %v", got)
			}
			if got := find(t, tg, "6D", 0).Value.Text; got != "2026-11-23T01:28:00Z" {
				t.Errorf("clock %v", got)
			}
			if got := find(t, tg, "6C", 1).Value.Text; got != "2026-11-23" {
				t.Errorf("target date %v", got)
			}
			if model == MBusModelUltrimis {
				if f := find(t, tg, "FD 17", 0).Value.Int; f != 0x02|0x40 {
					t.Errorf("flags 0x%X", f)
				}
				if v := find(t, tg, "FD 46", 0).Value.Number; math.Abs(v-3.58) > 1e-9 {
					t.Errorf("battery %v V", v)
				}
			} else {
				if f := find(t, tg, "FF 23", 0).Value.Int; f != 1<<1|1<<5 {
					t.Errorf("info 0x%X", f)
				}
				if !tg.MoreRecordsFollow {
					t.Error("flowIQ telegram 1 should end with DIF 1F")
				}
			}
		})
	}
}

// TestMBusMeterLink covers the link layer: addressing, SND_NKE, FCB
// repeats and multi-telegram sequencing, secondary selection.
func TestMBusMeterLink(t *testing.T) {
	m, err := NewMBusMeter(MBusMeterConfig{ID: "m1", Address: 5, Secondary: "12345678"}, fixedSnapshot(water.Snapshot{Forward: 1}))
	if err != nil {
		t.Fatal(err)
	}
	ack := []byte{mbus.Ack}
	if got := m.Respond(mbus.ShortFrame(mbus.CSndNke, 5), mbusT0); !bytes.Equal(got, ack) {
		t.Fatalf("SND_NKE: % X", got)
	}
	if got := m.Respond(mbus.ShortFrame(mbus.CSndNke, 6), mbusT0); got != nil {
		t.Fatalf("other address answered % X", got)
	}
	if got := m.Respond(mbus.ShortFrame(mbus.CSndNke, mbus.AddrBroadcast), mbusT0); got != nil {
		t.Fatalf("broadcast answered % X", got)
	}
	if got := m.Respond([]byte{0x10, 0x40, 0x05, 0x00, 0x16}, mbusT0); got != nil {
		t.Fatalf("bad checksum answered % X", got)
	}
	req := func(fcb bool) mbus.Telegram {
		c := mbus.CField(mbus.CReqUd2).WithFCB(fcb)
		return decodeAnswer(t, m.Respond(mbus.ShortFrame(byte(c), 5), mbusT0))
	}
	t1 := req(true)
	t2 := req(false)
	again := req(false) // FCB not toggled: the same telegram again
	t3 := req(true)     // toggled after the last telegram: the first again
	if !t1.MoreRecordsFollow || t2.MoreRecordsFollow || again.MoreRecordsFollow || !t3.MoreRecordsFollow {
		t.Errorf("sequence: more=%v %v %v %v", t1.MoreRecordsFollow, t2.MoreRecordsFollow, again.MoreRecordsFollow, t3.MoreRecordsFollow)
	}
	if t2.Header.AccessNumber != again.Header.AccessNumber || t3.Header.AccessNumber != t2.Header.AccessNumber+1 {
		t.Errorf("access numbers %d %d %d", t2.Header.AccessNumber, again.Header.AccessNumber, t3.Header.AccessNumber)
	}
	// SND_NKE restarts the sequence at the first telegram.
	m.Respond(mbus.ShortFrame(mbus.CSndNke, 5), mbusT0)
	if tg := req(true); !tg.MoreRecordsFollow {
		t.Error("after SND_NKE the first telegram must come")
	}

	sel := func(b []byte) []byte {
		f, _ := mbus.Encode(mbus.Frame{Kind: mbus.KindLong, C: mbus.CField(mbus.CSndUd), Address: mbus.AddrNetworkLayer, CI: 0x52, Data: b})
		return m.Respond(f, mbusT0)
	}
	kam := mbus.ManufacturerCode("KAM")
	tests := []struct {
		name string
		sel  []byte
		ok   bool
	}{
		{"exact", []byte{0x78, 0x56, 0x34, 0x12, byte(kam), byte(kam >> 8), 0x1B, 0x16}, true},
		{"all wildcards", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, true},
		{"digit wildcards", []byte{0x7F, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF}, true},
		{"other id", []byte{0x79, 0x56, 0x34, 0x12, 0xFF, 0xFF, 0xFF, 0xFF}, false},
		{"other digit under wildcard", []byte{0x8F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, false},
		{"other manufacturer", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x04, 0xFF, 0xFF}, false},
		{"other medium", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x07}, false},
	}
	for _, tt := range tests {
		got := sel(tt.sel)
		if tt.ok != bytes.Equal(got, ack) {
			t.Errorf("%s: answer % X", tt.name, got)
		}
		ans := m.Respond(mbus.ShortFrame(mbus.CReqUd2|mbus.FCB, mbus.AddrNetworkLayer), mbusT0)
		if tt.ok != (ans != nil) {
			t.Errorf("%s: selected=%v, REQ_UD2 to FD answered %v", tt.name, tt.ok, ans != nil)
		}
	}

	// SND_UD with the bus address record moves the meter to address 9.
	f, _ := mbus.Encode(mbus.Frame{Kind: mbus.KindLong, C: mbus.CField(mbus.CSndUd), Address: 5, CI: 0x51, Data: []byte{0x01, 0x7A, 0x09}})
	if got := m.Respond(f, mbusT0); !bytes.Equal(got, ack) || m.Address() != 9 {
		t.Fatalf("set address: % X, address %d", got, m.Address())
	}
	if tg := decodeAnswer(t, m.Respond(mbus.ShortFrame(mbus.CReqUd2, 9), mbusT0)); tg.Address != 9 {
		t.Errorf("answer from address %d", tg.Address)
	}
}

func TestMBusMeterReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replay.hex")
	f2, _ := mbus.Encode(mbus.Frame{Kind: mbus.KindLong, C: mbus.CField(mbus.CRspUd), Address: 8, CI: 0x78, Data: []byte{0x01, 0x13, 0x05}})
	text := "# two telegrams of one meter\n" +
		"68 3C 3C 68 08 08 72 78 03 49 11 77 04 0E 16 0A 00 00 00 0C 78 78 03 49 11 04 13 31 D4 00 00 42 6C 00 00 44 13 00 00 00 00 04 6D 0B 0B CD 13 02 27 00 00 09 FD 0E 02 09 FD 0F 06 0F 00 01 75 13 D3 16\n\n" +
		hexOf(f2) + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := newMBusMeter(MeterConfig{ID: "r", Address: 3, Model: MBusModelReplay, Replay: path}, nil, mbusT0)
	if err != nil {
		t.Fatal(err)
	}
	m := r.(*MBusMeter)
	if m.Header().ID != "11490378" || m.Header().Manufacturer != "ACW" {
		t.Errorf("replay header %+v", m.Header())
	}
	a := decodeAnswer(t, m.Respond(mbus.ShortFrame(mbus.CReqUd2|mbus.FCB, 3), mbusT0))
	b := decodeAnswer(t, m.Respond(mbus.ShortFrame(mbus.CReqUd2, 3), mbusT0))
	if a.Address != 3 || len(a.Records) != 9 || b.CI != 0x78 || len(b.Records) != 1 {
		t.Errorf("replay answers: %d records from %d, then CI %02X with %d", len(a.Records), a.Address, b.CI, len(b.Records))
	}
	_, err = newMBusMeter(MeterConfig{ID: "r", Address: 3, Model: "nope"}, nil, mbusT0)
	if !errors.Is(err, ErrMBusModel) {
		t.Errorf("unknown model: %v", err)
	}
	os.WriteFile(path, []byte("68 05 05 68 08 01 78 00 00 00 16\n"), 0o644)
	if _, err := newMBusMeter(MeterConfig{ID: "r", Address: 3, Model: MBusModelReplay, Replay: path}, nil, mbusT0); !errors.Is(err, ErrMBusModel) {
		t.Errorf("bad replay frame: %v", err)
	}
}

// TestMBusMetersThroughPTY starts an M-Bus bus of the simulator and polls
// both layouts as a master would, through the real pty at 2400 8E1.
func TestMBusMetersThroughPTY(t *testing.T) {
	s := startTestSim(t, `
seed: 3
buses:
  - name: mb
    protocol: mbus
    turnaround: 5ms
    meters:
      - {id: fiq, address: 1, model: flowiq, secondary: "12345678", water: {profile: flat, persons: 2}}
      - {id: ult, address: 2, model: ultrimis, water: {profile: vacant}}
`)
	pi := s.Ports()["mb"]
	if pi.Parity != "E" || pi.Baud != 2400 {
		t.Fatalf("line %+v, want 2400 8E1", pi)
	}
	p, err := serial.Open(pi.Device, &serial.Mode{BaudRate: 2400, DataBits: 8, Parity: serial.EvenParity, StopBits: serial.OneStopBit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	transact := func(req []byte) ([]byte, error) { return exchange(p, req, 2*time.Second, mbusFrame) }
	for _, addr := range []byte{1, 2} {
		got, err := transact(mbus.ShortFrame(mbus.CSndNke, addr))
		if err != nil || !bytes.Equal(got, []byte{mbus.Ack}) {
			t.Fatalf("SND_NKE %d: % X %v", addr, got, err)
		}
		got, err = transact(mbus.ShortFrame(mbus.CReqUd2|mbus.FCB, addr))
		if err != nil {
			t.Fatalf("REQ_UD2 %d: %v", addr, err)
		}
		tg := decodeAnswer(t, got)
		id := map[byte]string{1: "fiq", 2: "ult"}[addr]
		snap, _ := s.Snapshot(id)
		fwd := find(t, tg, "13", 0).Value.Number
		if fwd > snap.Forward+0.0011 || snap.Forward-fwd > 0.05 {
			t.Errorf("%s: forward over the wire %v, simulator %v", id, fwd, snap.Forward)
		}
	}
	// Secondary addressing through the bus: select flowIQ by ident digits.
	sel, _ := mbus.Encode(mbus.Frame{Kind: mbus.KindLong, C: mbus.CField(mbus.CSndUd), Address: mbus.AddrNetworkLayer, CI: 0x52,
		Data: []byte{0x78, 0x56, 0x34, 0x12, 0xFF, 0xFF, 0xFF, 0xFF}})
	if got, err := transact(sel); err != nil || !bytes.Equal(got, []byte{mbus.Ack}) {
		t.Fatalf("select: % X %v", got, err)
	}
	got, err := transact(mbus.ShortFrame(mbus.CReqUd2|mbus.FCB, mbus.AddrNetworkLayer))
	if err != nil {
		t.Fatal(err)
	}
	if tg := decodeAnswer(t, got); tg.Header.ID != "12345678" || tg.Header.Manufacturer != "KAM" {
		t.Errorf("selected meter answered as %+v", tg.Header)
	}
}
