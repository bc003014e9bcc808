package cjt188

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// The tests below build their frames with the encoder, so they need no
// shared data; acceptance_test.go checks real frames.

var addr1 = Address{0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78}

func TestAddressLabelOrder(t *testing.T) {
	a, err := ParseAddress("78330011223344")
	if err != nil || a != addr1 {
		t.Fatalf("ParseAddress = % X, %v; want % X", a, err, addr1)
	}
	if s := a.String(); s != "78330011223344" {
		t.Fatalf("String %s", s)
	}
	if b, _ := ParseAddress("AAAAAAAAAAAAAA"); !b.IsBroadcast() {
		t.Fatal("AA×7 is not broadcast")
	}
	for _, bad := range []string{"7833001122334", "7833001122334A", "783300112233445"} {
		if _, err := ParseAddress(bad); !errors.Is(err, ErrAddress) {
			t.Errorf("ParseAddress(%q) = %v, want ErrAddress", bad, err)
		}
	}
}

func TestRequestBytes(t *testing.T) {
	// The same request in both DI orders differs only in the DI bytes;
	// the checksum is the same.
	hf := ReadData(TypeColdWater, addr1, DICurrent, HighFirst, 0)
	lf := ReadData(TypeColdWater, addr1, DICurrent, LowFirst, 0)
	hf.Preamble, lf.Preamble = 4, 4
	bh, _ := Encode(hf)
	bl, _ := Encode(lf)
	want := mustHex(t, "FE FE FE FE 68 10 44 33 22 11 00 33 78 01 03 1F 90 00 80 16")
	if !bytes.Equal(bl, want) {
		t.Fatalf("low-first % X\nwant      % X", bl, want)
	}
	if !bytes.Equal(bh[15:17], []byte{0x90, 0x1F}) || bh[18] != bl[18] {
		t.Fatalf("high-first % X", bh)
	}
	for _, b := range [][]byte{bh, bl} {
		m, n, err := DecodeMessage(b)
		if err != nil || n != len(b) || m.DI != DICurrent || m.Preamble != 4 || m.Skipped != 0 {
			t.Fatalf("decode % X: %+v n=%d %v", b, m, n, err)
		}
	}
}

func TestDecodeLineBytes(t *testing.T) {
	f := ReadData(TypeHotWater, addr1, DIClock, LowFirst, 9)
	f.Preamble = 2
	frame, _ := Encode(f)
	// Stray FF and a stray 68 before the preamble, RSSI bytes after.
	in := append([]byte{0xFF, 0x68, 0x00}, frame...)
	in = append(in, 0xC4, 0x3A)
	m, n, err := DecodeMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Skipped != 3 || m.Preamble != 2 || n != len(in)-2 || m.DI != DIClock || m.SER != 9 || m.Type != TypeHotWater {
		t.Fatalf("skipped %d preamble %d n %d/%d %+v", m.Skipped, m.Preamble, n, len(in), m)
	}
	// Every proper prefix of the frame is incomplete, never an error.
	for i := 0; i < len(frame); i++ {
		if _, _, err := Decode(frame[:i]); !errors.Is(err, ErrIncomplete) && !(i <= 2 && errors.Is(err, ErrNoStart)) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := Encode(ReadData(TypeColdWater, addr1, DICurrent, HighFirst, 1))
	cs := len(good) - 2
	tests := []struct {
		name string
		in   []byte
		want error
		text string
	}{
		{"checksum", with(good, cs, good[cs]+1), ErrChecksum, fmt.Sprintf("checksum %02X, computed %02X", good[cs]+1, good[cs])},
		{"end byte", with(good, cs+1, 0x17), ErrEnd, "end byte 17, want 16"},
		{"no start", []byte{0xFE, 0xFE, 0x10}, ErrNoStart, "no start byte 68"},
		{"length longer than input", good[:len(good)-1], ErrIncomplete, "incomplete frame"},
	}
	for _, tt := range tests {
		_, _, err := Decode(tt.in)
		if !errors.Is(err, tt.want) || err.Error() != tt.text {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.text)
		}
	}
	// A data field too short for DI and SER.
	short, _ := Encode(Frame{Type: TypeColdWater, Address: addr1, Control: 0x81, Data: []byte{0x90}})
	if _, _, err := DecodeMessage(short); !errors.Is(err, ErrLength) {
		t.Errorf("short data: %v", err)
	}
}

func with(b []byte, i int, v byte) []byte {
	out := append([]byte(nil), b...)
	out[i] = v
	return out
}

func TestControl(t *testing.T) {
	c := Control(0xC1)
	if !c.IsReply() || !c.IsError() || c.More() || c.Function() != FuncReadData {
		t.Fatalf("C1: %v %v %v %v", c.IsReply(), c.IsError(), c.More(), c.Function())
	}
	if FuncReadAddress.Reply() != 0x83 || FuncWriteAddress.Reply() != 0x95 || Control(0xA1).More() != true {
		t.Fatal("reply codes")
	}
}

func TestUnknownDIKeepsWireOrder(t *testing.T) {
	f := Request(TypeColdWater, addr1, FuncReadData, 0x1234, HighFirst, 0, nil)
	b, _ := Encode(f)
	m, _, _ := DecodeMessage(b)
	if m.DI != 0x1234 {
		t.Fatalf("DI %s", m.DI)
	}
	// D12x history in the low-first order.
	b, _ = Encode(Request(TypeColdWater, addr1, FuncReadData, 0xD125, LowFirst, 0, nil))
	if m, _, _ := DecodeMessage(b); m.DI != 0xD125 || m.Order != LowFirst {
		t.Fatalf("D125 read as %s %s", m.DI, m.Order)
	}
}

func TestCurrentRoundTrip(t *testing.T) {
	c := Current{
		Volume:     Quantity{Value: 1234.56, Unit: UnitM3},
		Settlement: Quantity{Value: 1200.01, Unit: UnitM3},
		Clock:      Clock{2026, 12, 1, 21, 5, 9},
		Status:     MakeStatus(CommonLayout, ValveStateClosed, true, [2]byte{0xE0, 0x12}),
	}
	for _, o := range []ClockOrder{ClockSecondsFirst, ClockCenturyFirst} {
		body, err := AppendCurrent(nil, c, o)
		if err != nil || len(body) != CurrentLen-3 {
			t.Fatalf("%s: %d bytes, %v", o, len(body), err)
		}
		got, err := DecodeCurrent(body, o)
		if err != nil || got != c {
			t.Fatalf("%s: %+v, %v", o, got, err)
		}
		// Unambiguous here: the other order gives no valid time, so auto finds it.
		if auto, err := DecodeCurrent(body, ClockAuto); err != nil || auto.Clock != c.Clock {
			t.Fatalf("%s auto: %+v %v", o, auto.Clock, err)
		}
	}
	if s := c.Status; s[0] != 0xE5 || s[1] != 0x12 {
		t.Fatalf("status % X", s)
	}
}

func TestClockErrors(t *testing.T) {
	if _, err := DecodeClock([]byte{0x61, 0, 0, 1, 1, 0x26, 0x20}, ClockSecondsFirst); !errors.Is(err, ErrClock) {
		t.Errorf("second 61: %v", err)
	}
	if _, err := DecodeClock([]byte{0x0A, 0, 0, 1, 1, 0x26, 0x20}, ClockAuto); !errors.Is(err, ErrBCD) {
		t.Errorf("BCD: %v", err)
	}
	if c, err := DecodeClock(make([]byte, 7), ClockCenturyFirst); err != nil || !c.IsZero() {
		t.Errorf("zeros: %v %v", c, err)
	}
	if _, err := DecodeClock([]byte{0x00, 0, 0, 0x30, 0x02, 0x26, 0x20}, ClockSecondsFirst); !errors.Is(err, ErrClock) {
		t.Errorf("30 February: %v", err)
	}
}

func TestStatusLayouts(t *testing.T) {
	for _, tc := range []struct {
		b       byte
		l       Layout
		valve   Valve
		battery bool
	}{
		{0x00, CommonLayout, ValveStateOpen, false},
		{0x21, CommonLayout, ValveStateClosed, false},
		{0x07, CommonLayout, ValveStateAbnormal, true},
		{0x02, CommonLayout, ValveStateUnknown, false},
		{0x80, MirroredLayout, ValveStateClosed, false},
		{0xE0, MirroredLayout, ValveStateAbnormal, true},
		{0x21, MirroredLayout, ValveStateOpen, true},
	} {
		s := Status{tc.b, 0}
		if v, bat := s.Valve(tc.l), s.BatteryLow(tc.l); v != tc.valve || bat != tc.battery {
			t.Errorf("%02X %+v: %s %v, want %s %v", tc.b, tc.l, v, bat, tc.valve, tc.battery)
		}
		if got := MakeStatus(tc.l, tc.valve, tc.battery, [2]byte{}); got.Valve(tc.l) != tc.valve || got.BatteryLow(tc.l) != tc.battery {
			t.Errorf("MakeStatus %+v %s: % X", tc.l, tc.valve, got)
		}
	}
	if err := (Layout{ValveLow: 1, ValveHigh: 1, Battery: 2}).Check(); err == nil {
		t.Error("overlapping bits accepted")
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		q    Quantity
		want float64
	}{
		{Quantity{1000.10, UnitM3}, 1000.1},
		{Quantity{123.45, UnitL}, 0.12345},
		{Quantity{123.45, UnitL100}, 12.345},
		{Quantity{5.5, UnitM3x100}, 550},
	} {
		if got, err := tc.q.M3(); err != nil || got != tc.want {
			t.Errorf("%v %s = %v %v, want %v", tc.q.Value, tc.q.Unit, got, err, tc.want)
		}
	}
	_, err := Quantity{1, UnitKWh}.M3()
	if !errors.Is(err, ErrUnit) || err.Error() != "unit 05 (kWh) is not a volume" {
		t.Errorf("kWh: %v", err)
	}
	if UnitM3x10.String() != "m3×10" || UnitLh10.String() != "L/h×10" || UnitKWh.String() != "kWh" || Unit(0x99).String() != "unit 99" {
		t.Error("unit names")
	}
}

func TestBadVolumeBCD(t *testing.T) {
	body := make([]byte, CurrentLen-3)
	body[0] = 0x1A
	body[4] = byte(UnitM3)
	if _, err := DecodeCurrent(body, ClockAuto); !errors.Is(err, ErrBCD) {
		t.Fatalf("%v", err)
	}
	if _, err := DecodeCurrent(body[:10], ClockAuto); !errors.Is(err, ErrLength) {
		t.Fatalf("short: %v", err)
	}
}

func TestWrites(t *testing.T) {
	clk := Clock{2026, 12, 1, 8, 0, 0}
	wc, err := WriteClock(TypeColdWater, addr1, LowFirst, 3, clk, ClockCenturyFirst)
	if err != nil {
		t.Fatal(err)
	}
	wv := WriteValve(TypeColdWater, addr1, HighFirst, 4, ValveClose)
	to, _ := ParseAddress("78330123456789")
	wa := WriteAddress(TypeColdWater, Broadcast, HighFirst, 5, to)
	for _, tc := range []struct {
		f    Frame
		co   ClockOrder
		want WriteRequest
		c    Control
	}{
		{wc, ClockCenturyFirst, WriteRequest{DI: DIWriteClock, Clock: clk}, FuncWriteData},
		{wv, ClockAuto, WriteRequest{DI: DIValve, Action: ValveClose}, FuncWriteData},
		{wa, ClockAuto, WriteRequest{DI: DIWriteAddress, Address: to}, FuncWriteAddress},
	} {
		b, _ := Encode(tc.f)
		m, _, err := DecodeMessage(b)
		if err != nil || m.Control != tc.c {
			t.Fatalf("% X: %v %s", b, err, m.Control)
		}
		w, err := ParseWrite(m, tc.co)
		if err != nil || w != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.want.DI, w, err, tc.want)
		}
	}
}

func TestCheckReply(t *testing.T) {
	reqF := ReadData(TypeColdWater, addr1, DICurrent, LowFirst, 7)
	rb, _ := Encode(reqF)
	req, _, _ := DecodeMessage(rb)
	reply := func(mut func(*Frame)) Message {
		f := Reply(req, make([]byte, CurrentLen-3))
		f.Data[1], f.Data[0] = f.Data[0], f.Data[1] // the meter answers in the other order
		if mut != nil {
			mut(&f)
		}
		b, _ := Encode(f)
		m, _, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := CheckReply(req, reply(nil)); err != nil {
		t.Fatalf("good reply: %v", err)
	}
	for name, tc := range map[string]struct {
		mut  func(*Frame)
		want error
	}{
		"ser":     {func(f *Frame) { f.Data[2] = 6 }, ErrSER},
		"address": {func(f *Frame) { f.Address[0] = 0x45 }, ErrAddress},
		"error":   {func(f *Frame) { f.Control = 0xC1; f.Data = []byte{0x01, 0x00} }, ErrMeterError},
		"request": {func(f *Frame) { f.Control = 0x01 }, ErrControl},
		"di":      {func(f *Frame) { f.Data[0], f.Data[1] = 0x90, 0x7F }, ErrDI},
	} {
		if err := CheckReply(req, reply(tc.mut)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
