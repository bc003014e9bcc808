package daemon

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/drivers"
	"tidegate/reading"
)

// panicSink panics on the first records it is handed: a bug met inside a
// bus's goroutine.
type panicSink struct{ left atomic.Int32 }

func (s *panicSink) Reading(reading.Reading, reading.Kind) {
	if s.left.Add(-1) >= 0 {
		panic("a bug behind the bus")
	}
}

func (s *panicSink) Event(reading.Event) {}

// A panic in a bus's goroutine costs a restart, not the bus: the
// supervisor recovers it, counts it, says restarting, and polls again.
// (Before: the panic took the whole daemon down.)
func TestBusPanicRestarts(t *testing.T) {
	// A converter that accepts and never answers: every poll fails, and a
	// failed poll is a record for the sink.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg, err := config.Parse("c.yaml", []byte("gateway: {id: g}\nbuses: [{name: a, protocol: modbus, tcp: \""+ln.Addr().String()+"\", timeout: 50ms, retries: 0}]\nmeters: [{id: m1, bus: a, address: 1, profile: tuf2000m, poll: {flow: 1s}}]\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cfg.BusByName("a")
	bc, mcs := driverConfig(b, metersOn(cfg, "a"), time.UTC)
	sink := &panicSink{}
	sink.left.Store(2)
	log := logrus.New()
	log.SetOutput(&syncBuffer{})
	bus, err := drivers.NewBus(bc, mcs, cfg.Profiles, sink, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	r := &busRun{cfg: b, bus: bus, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { defer close(r.done); r.supervise(ctx, logrus.NewEntry(log)) }()
	defer func() { cancel(); <-r.done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := r.status()
		if s.Restarts == 2 && s.State != "restarting" && sink.left.Load() < 0 {
			if !strings.Contains(s.RestartError, "bus: panic") || !strings.Contains(s.RestartError, "goroutine") {
				t.Errorf("restart error %q: want the panic with its stack", s.RestartError)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, sink calls left %d", s, sink.left.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
