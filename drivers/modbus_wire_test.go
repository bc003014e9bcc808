package drivers

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"tidegate/drivers/link"
)

// echoProxy is an RS-485 converter with automatic direction control that
// hears its own transmission: every request comes back to the master
// before the meter's answer. It forwards to the simulator's TCP port.
func echoProxy(t *testing.T, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			var mu sync.Mutex // echo and answers share the master's side
			toMaster := func(b []byte) {
				mu.Lock()
				c.Write(b)
				mu.Unlock()
			}
			// copyFrom forwards what src sends to each of to, until src ends.
			copyFrom := func(src net.Conn, to ...func([]byte)) {
				buf := make([]byte, 256)
				for {
					n, err := src.Read(buf)
					if err != nil {
						return
					}
					for _, w := range to {
						w(buf[:n])
					}
				}
			}
			wg.Add(2)
			go func() { // the master's requests: echoed back, and on to the bus
				defer wg.Done()
				defer s.Close()
				copyFrom(c, toMaster, func(b []byte) { s.Write(b) })
			}()
			go func() { // the bus's answers
				defer wg.Done()
				defer c.Close()
				copyFrom(s, toMaster)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestModbusEchoingConverter: through a converter that echoes, every poll
// succeeds (every one failed with a CRC error: the echo was read as the
// answer) and the echoes are counted as stray bytes.
func TestModbusEchoingConverter(t *testing.T) {
	sim := startSim(t, `
profiles: profiles
buses:
  - name: a
    protocol: modbus
    baud: 19200
    turnaround: 5ms
    pty: false
    tcp: 127.0.0.1:0
    meters:
      - {id: m1, address: 1, profile: tuf2000m}
      - {id: m2, address: 2, profile: bench20}
`)
	addr := echoProxy(t, sim.Ports()["a"].TCP)
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: link.Config{TCP: addr, Baud: 19200}, Timeout: 500 * time.Millisecond, Retries: -1},
		[]MeterConfig{{ID: "m1", Address: 1, Profile: "tuf2000m", Interval: 50 * time.Millisecond}, {ID: "m2", Address: 2, Profile: "bench20", Interval: 50 * time.Millisecond}},
		loadProfiles(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bus.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for (len(sink.good("m1")) < 5 || len(sink.good("m2")) < 5) && time.Now().Before(deadline) && sink.bad("m1")+sink.bad("m2") < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	st := bus.Stats()
	if sink.bad("m1")+sink.bad("m2") != 0 || len(sink.good("m1")) < 5 || len(sink.good("m2")) < 5 {
		t.Fatalf("good %d/%d, bad %d/%d, last error %q", len(sink.good("m1")), len(sink.good("m2")), sink.bad("m1"), sink.bad("m2"), st.LastError)
	}
	if st.Stray < 8*st.Requests || st.CRCErrors != 0 {
		t.Errorf("stray %d for %d requests (each echo is 8 bytes), CRC errors %d", st.Stray, st.Requests, st.CRCErrors)
	}
}

// lateSim: meter "late" answers at random past the master's timeout, so
// that its answer straddles it (starts before, ends after); "ok" is its
// healthy neighbour. Timing at 9600 baud: a 17-register answer is 39 bytes,
// 41 ms, and takes 54 ms from the request's first byte; the master waits
// 200 ms from the end of its request (margin for a loaded machine); the late
// answer starts 5 ms (turnaround) + 160 ms after it, so it is still coming
// in when the master gives up.
const lateSim = `
profiles: profiles
buses:
  - name: a
    protocol: modbus
    baud: 9600
    turnaround: 5ms
    meters:
      - {id: late, address: 1, profile: bench17, faults: {late: %v, late_by: 160ms}}
      - {id: ok, address: 2, profile: bench17}
`

// TestLateMeterSparesNeighbour: after a timeout the line is drained until
// it has been silent for one answer's time, so the neighbour's request
// never lands on the late answer's tail (before, it collided with it: the
// neighbour's poll failed and it backed off). Asserts what happened: the
// neighbour's polls (almost) never fail, and it was polled about as often
// as the late meter, whatever the machine's load made of the pace.
func TestLateMeterSparesNeighbour(t *testing.T) {
	seconds, iv, backoff := 6, 100*time.Millisecond, 100*time.Millisecond
	if s, err := strconv.Atoi(os.Getenv("TIDEGATE_NEIGHBOUR_SECONDS")); err == nil {
		// The figure: a minute, default backoff (a failed poll
		// costs the neighbour 10 s of polls).
		seconds, backoff = s, 10*time.Second
	}
	sim := startSim(t, fmt.Sprintf(lateSim, 0.3))
	sink := newCollector()
	bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: link.Config{Device: sim.Ports()["a"].Device, Baud: 9600},
		Timeout: 200 * time.Millisecond, Retries: -1, Backoff: backoff},
		[]MeterConfig{{ID: "late", Address: 1, Profile: "bench17", Interval: iv}, {ID: "ok", Address: 2, Profile: "bench17", Interval: iv}},
		loadProfiles(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bus.Run(ctx); close(done) }()
	time.Sleep(time.Duration(seconds) * time.Second)
	cancel()
	<-done
	good, bad := len(sink.good("ok")), sink.bad("ok")
	lateGood, lateBad := len(sink.good("late")), sink.bad("late")
	t.Logf("neighbour: %d good, %d failed in %d s (%.1f good/min); late meter: %d good, %d failed; stray %d",
		good, bad, seconds, float64(good)*60/float64(seconds), lateGood, lateBad, bus.Stats().Stray)
	if lateBad == 0 {
		t.Fatal("the late meter never failed: the fault did not happen")
	}
	// Before, nearly every late answer cost the neighbour its next poll
	// (9 failed beside 12 late). A loaded machine may still delay an
	// answer past even a generous timeout now and then: at most one
	// neighbour failure for two of the late meter.
	if 2*bad > lateBad {
		sink.mu.Lock()
		for _, r := range sink.readings["ok"] {
			if r.Error != "" {
				t.Log(r.Error)
			}
		}
		sink.mu.Unlock()
		t.Errorf("the neighbour failed %d of %d polls beside a late meter that failed %d", bad, good+bad, lateBad)
	}
	if good < (lateGood+lateBad)*3/4 {
		t.Errorf("the neighbour got %d polls, the late meter %d", good, lateGood+lateBad)
	}
}
