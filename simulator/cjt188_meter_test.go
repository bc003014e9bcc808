package simulator

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"tidegate/protocol/cjt188"
)

// cjtFrame frames a CJ/T 188 answer: complete when a valid frame is in;
// stray bytes before it and bytes after are left for the caller to see.
func cjtFrame(got []byte) (int, bool, error) {
	_, n, err := cjt188.Decode(got)
	switch {
	case err == nil:
		return n, true, nil
	case errors.Is(err, cjt188.ErrIncomplete), errors.Is(err, cjt188.ErrNoStart):
		return 0, false, nil
	}
	return 0, false, err
}

const cjtTestConfig = `
seed: 5
speed: 600
buses:
  - name: cj
    protocol: cjt188
    turnaround: 5ms
    tcp: 127.0.0.1:0
    meters:
      - {id: cj-1, address: "78330011223344", preamble: 3, valve: true, water: {profile: flat, persons: 4, use_scale: 4, leaks: [{rate_lh: 400}]}}
      - {id: cj-2, address: 00000024170567, di_order: low-first, reply_di_order: high-first, clock_order: century-first, status_layout: mirrored, total: forward, water: {profile: vacant}}
      - {id: cj-3, address: 78330000000003, clock_order: none, faults: {trailing: 1}}
      - {id: cj-4, address: 78330000000004, faults: {garbage: 1}}
      - {id: cj-5, address: 78330000000005, faults: {crc: 1}}
`

func cjtRequest(t *testing.T, f cjt188.Frame) []byte {
	t.Helper()
	b, err := cjt188.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openCJT(t *testing.T, dev string) serial.Port {
	t.Helper()
	p, err := serial.Open(dev, &serial.Mode{BaudRate: 2400, DataBits: 8, Parity: serial.EvenParity, StopBits: serial.OneStopBit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestCJTMetersThroughPTY reads the simulated CJ/T 188 meters as a master
// does, through the real pty at 2400 8E1: values, DI orders, clock orders,
// preamble, status layouts, the valve, the faults, and the line's timing.
func TestCJTMetersThroughPTY(t *testing.T) {
	s := startTestSim(t, cjtTestConfig)
	pi := s.Ports()["cj"]
	if pi.Baud != 2400 || pi.Parity != "E" || pi.Protocol != "cjt188" {
		t.Fatalf("line %+v, want cjt188 2400 8E1", pi)
	}
	js, _ := json.Marshal(pi)
	if !strings.Contains(string(js), `{"id":"cj-2","address":"00000024170567"}`) {
		t.Fatalf("ports: %s", js)
	}
	p := openCJT(t, pi.Device)
	ask := func(f cjt188.Frame) ([]byte, time.Duration, error) {
		start := time.Now()
		got, err := exchange(p, cjtRequest(t, f), 2*time.Second, cjtFrame)
		return got, time.Since(start), err
	}
	addr := func(s string) cjt188.Address { a, _ := cjt188.ParseAddress(s); return a }

	// cj-1: 3 FE, high-first, seconds-first clock, common layout, net total.
	got, took, err := ask(cjt188.ReadData(cjt188.TypeColdWater, addr("78330011223344"), cjt188.DICurrent, cjt188.HighFirst, 0x42))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := cjt188.DecodeMessage(got)
	if err != nil || m.Preamble != 3 || m.SER != 0x42 || m.Order != cjt188.HighFirst || m.Control != 0x81 {
		t.Fatalf("cj-1: % X %+v %v", got, m, err)
	}
	// True line timing: the request is 16 bytes, the reply 3+35, 11 bits each at 2400 baud.
	if wire := time.Duration((16+38)*11) * time.Second / 2400; took < wire {
		t.Errorf("answer after %v, faster than the wire's %v", took, wire)
	}
	c, err := cjt188.DecodeCurrent(m.Body, cjt188.ClockSecondsFirst)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := s.Snapshot("cj-1")
	net := snap.Forward - snap.Reverse
	if v := c.Volume.Value; v > net+0.01 || net-v > 0.05 {
		t.Errorf("cj-1 volume %v, simulator net %v", v, net)
	}
	if c.Clock.Year != snap.MeterClock.Year() || c.Status.Valve(cjt188.CommonLayout) != cjt188.ValveStateOpen {
		t.Errorf("cj-1 clock %v status %s", c.Clock, c.Status)
	}

	// cj-2 understands only low-first requests and answers high-first.
	req2 := cjt188.ReadData(cjt188.TypeColdWater, addr("00000024170567"), cjt188.DICurrent, cjt188.HighFirst, 1)
	if got, _, err := ask(req2); err == nil {
		t.Fatalf("cj-2 answered a high-first request: % X", got)
	}
	req2 = cjt188.ReadData(cjt188.TypeColdWater, addr("00000024170567"), cjt188.DICurrent, cjt188.LowFirst, 2)
	got, _, err = ask(req2)
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ = cjt188.DecodeMessage(got)
	if m.Order != cjt188.HighFirst || m.Preamble != 0 {
		t.Fatalf("cj-2 answered in %s with %d FE", m.Order, m.Preamble)
	}
	// Century-first is proved by the date it gives: the same bytes read
	// seconds-first are a valid time whenever the meter's hour is 01-12
	// (it lands in the month), so their failure proves nothing.
	c, err = cjt188.DecodeCurrent(m.Body, cjt188.ClockCenturyFirst)
	snap2, _ := s.Snapshot("cj-2")
	if err != nil || c.Clock.Year != snap2.MeterClock.Year() || c.Clock.Month != int(snap2.MeterClock.Month()) {
		t.Fatalf("cj-2 century-first clock %v %v, meter clock %v", c.Clock, err, snap2.MeterClock)
	}

	// cj-3: no clock, two bytes after the end byte.
	got, err = exchange(p, cjtRequest(t, cjt188.ReadData(0x10, addr("78330000000003"), cjt188.DICurrent, cjt188.HighFirst, 3)), 2*time.Second, nBytes(35+2))
	if err != nil {
		t.Fatal(err)
	}
	d, err := cjt188.Describe(got, cjt188.DescribeOptions{})
	if err != nil || d.MeterTime != nil || string(d.Trailing) != "\xC4\x3A" {
		t.Fatalf("cj-3 % X: %+v %v", got, d, err)
	}
	// cj-4: stray bytes before 68.
	got, _, err = ask(cjt188.ReadData(0x10, addr("78330000000004"), cjt188.DICurrent, cjt188.HighFirst, 4))
	if m, _, err2 := cjt188.DecodeMessage(got); err != nil || err2 != nil || m.Skipped != 3 {
		t.Fatalf("cj-4 % X: skipped %d, %v %v", got, m.Skipped, err, err2)
	}
	// cj-5: bad checksum.
	if _, _, err := ask(cjt188.ReadData(0x10, addr("78330000000005"), cjt188.DICurrent, cjt188.HighFirst, 5)); !errors.Is(err, cjt188.ErrChecksum) {
		t.Fatalf("cj-5: %v, want a checksum error", err)
	}

	// The valve really stops the flow: close it, the total stays.
	got, _, err = ask(cjt188.WriteValve(0x10, addr("78330011223344"), cjt188.HighFirst, 6, cjt188.ValveClose))
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ = cjt188.DecodeMessage(got)
	if st, ok := cjt188.DecodeValveReply(m.Body); m.Control != 0x84 || !ok || st.Valve(cjt188.CommonLayout) != cjt188.ValveStateClosed {
		t.Fatalf("valve reply % X", got)
	}
	closedAt, _ := s.Snapshot("cj-1")
	time.Sleep(200 * time.Millisecond)
	if later, _ := s.Snapshot("cj-1"); later.Forward != closedAt.Forward || later.Flow != 0 {
		t.Fatalf("closed valve: forward %v -> %v, flow %v", closedAt.Forward, later.Forward, later.Flow)
	}
	// A meter without valve refuses with an error reply.
	got, _, err = ask(cjt188.WriteValve(0x10, addr("78330000000003"), cjt188.HighFirst, 7, cjt188.ValveClose))
	if m, _, _ := cjt188.DecodeMessage(got); err != nil || !m.Control.IsError() {
		t.Fatalf("valve without valve: % X %v", got, err)
	}
}

// TestCJTBroadcastCollision: a broadcast read-address with several meters
// on the line is answered by all of them at once: no valid frame comes.
// With one meter it is that meter's address.
func TestCJTBroadcastCollision(t *testing.T) {
	s := startTestSim(t, cjtTestConfig)
	p := openCJT(t, s.Ports()["cj"].Device)
	got, err := exchange(p, cjtRequest(t, cjt188.ReadAddress(cjt188.HighFirst, 0)), 1500*time.Millisecond, cjtFrame)
	if err == nil {
		t.Fatalf("several meters gave one valid frame: % X", got)
	}
	if len(got) == 0 || s.Bus("cj").Stats().Collisions == 0 {
		t.Fatalf("no garbled answer (%d bytes, stats %+v)", len(got), s.Bus("cj").Stats())
	}

	one := startTestSim(t, `
buses:
  - name: cj
    protocol: cjt188
    meters:
      - {id: solo, address: "78330123456789", preamble: 2}
`)
	p = openCJT(t, one.Ports()["cj"].Device)
	got, err = exchange(p, cjtRequest(t, cjt188.ReadAddress(cjt188.HighFirst, 0xA7)), 2*time.Second, cjtFrame)
	m, _, err2 := cjt188.DecodeMessage(got)
	if err != nil || err2 != nil || m.Address.String() != "78330123456789" || m.Control != 0x83 || m.SER != 0xA7 {
		t.Fatalf("read address: % X %v %v", got, err, err2)
	}
}

func TestCJTConfigErrors(t *testing.T) {
	for _, tc := range []struct{ meter, want string }{
		{`{id: a, address: 7833001122334}`, "address: missing"},
		{`{id: a, address: "7833001122334x"}`, "not 14 digits"},
		{`{id: a, address: 78330011223344, di_order: middle}`, "di_order"},
		{`{id: a, address: 78330011223344, clock_order: minutes-first}`, "clock_order"},
		{`{id: a, address: 78330011223344, preamble: 5}`, "preamble 5"},
		{`{id: a, address: 78330011223344, status_layout: odd}`, "status_layout"},
	} {
		_, err := ParseConfig("x.yaml", []byte("buses:\n  - name: cj\n    protocol: cjt188\n    meters:\n      - "+tc.meter+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.yaml:5:9") {
			t.Errorf("%s: %v, want %q at x.yaml:5:9", tc.meter, err, tc.want)
		}
	}
	_, err := ParseConfig("x.yaml", []byte("buses:\n  - name: cj\n    protocol: cjt188\n    meters:\n      - {id: a, address: 78330011223344}\n      - {id: b, address: 78330011223344}\n"))
	if err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("same address twice: %v", err)
	}
}
