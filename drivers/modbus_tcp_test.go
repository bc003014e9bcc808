package drivers

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"tidegate/drivers/link"
)

// mbapServer is a Modbus TCP gateway on a real loopback socket. It answers
// every FC03 read with zeros; the request numbered late (counting all
// connections) is answered lateBy afterwards, and the first connection goes
// silent, though open, from its request numbered hangFrom on (a gateway
// that rebooted behind a NAT).
type mbapServer struct {
	ln       net.Listener
	late     int
	lateBy   time.Duration
	hangFrom int

	mu    sync.Mutex
	n     int // requests received
	conns int
	wg    sync.WaitGroup
}

func startMBAPServer(t *testing.T, s *mbapServer) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			first := s.conns == 1
			s.mu.Unlock()
			s.wg.Add(1)
			go func() { defer s.wg.Done(); defer c.Close(); s.serve(c, first) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return ln.Addr().String()
}

func (s *mbapServer) serve(c net.Conn, first bool) {
	hdr := make([]byte, 7)
	var wmu sync.Mutex
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		pdu := make([]byte, int(binary.BigEndian.Uint16(hdr[4:]))-1)
		if _, err := io.ReadFull(c, pdu); err != nil {
			return
		}
		s.mu.Lock()
		s.n++
		n := s.n
		s.mu.Unlock()
		if first && s.hangFrom > 0 && n >= s.hangFrom {
			continue
		}
		q := int(binary.BigEndian.Uint16(pdu[3:]))
		ans := append([]byte(nil), hdr...)
		binary.BigEndian.PutUint16(ans[4:], uint16(3+2*q))
		ans = append(ans, pdu[0], byte(2*q))
		ans = append(ans, make([]byte, 2*q)...)
		send := func() { wmu.Lock(); c.Write(ans); wmu.Unlock() }
		if n == s.late {
			s.wg.Add(1)
			go func() { defer s.wg.Done(); time.Sleep(s.lateBy); send() }()
			continue
		}
		send()
	}
}

// TestModbusTCPRecovers: one answer comes late, then the connection goes
// silent. The late answer is skipped by its transaction id (goburrow's
// transport failed every later request: "transaction id N-1 does not match
// N"); the silent connection is closed and dialled again (a bus_error
// event, a reopen) and polling goes on over the new one.
func TestModbusTCPRecovers(t *testing.T) {
	srv := &mbapServer{late: 3, lateBy: 300 * time.Millisecond, hangFrom: 20}
	addr := startMBAPServer(t, srv)
	sink := newCollector()
	meters := []MeterConfig{
		{ID: "m1", Address: 1, Profile: "bench20", Interval: 40 * time.Millisecond},
		{ID: "m2", Address: 2, Profile: "bench20", Interval: 40 * time.Millisecond},
	}
	bus, err := NewBus(BusConfig{Name: "gw", Protocol: ProtoModbusTCP, Link: link.Config{TCP: addr}, Timeout: 150 * time.Millisecond, Retries: -1, Backoff: 50 * time.Millisecond},
		meters, loadProfiles(t), sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bus.Run(ctx); close(done) }()
	// Requests 1..19 on the first connection, of which one times out; then
	// failLimit silent ones, a redial, and 20 good polls on the second.
	deadline := time.Now().Add(30 * time.Second)
	for len(sink.good("m1"))+len(sink.good("m2")) < 18+20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	st := bus.Stats()
	good := len(sink.good("m1")) + len(sink.good("m2"))
	if good < 18+20 {
		t.Fatalf("%d good polls (m1 %d bad, m2 %d bad), want 38; stats %+v", good, sink.bad("m1"), sink.bad("m2"), st)
	}
	// The late request and the three to the silent connection failed, each
	// a timeout (a loaded machine may add one now and then, whose answer is
	// then late too); the third silent one is the line's failure, not the
	// meter's (no error reading). Every late answer was skipped, counted.
	if bad := sink.bad("m1") + sink.bad("m2"); st.PollsFailed < 4 || st.PollsFailed != st.Timeouts || int64(bad) != st.PollsFailed-1 {
		t.Errorf("%d error readings, %d failed polls, %d timeouts; want at least 4 failed polls, each a timeout, all but one with an error reading",
			bad, st.PollsFailed, st.Timeouts)
	}
	if st.Stale < 1 || st.Stale > st.Timeouts-3 || st.Reopens != 1 {
		t.Errorf("stale %d timeouts %d reopens %d, want the late answers skipped (1 or more, one per timeout but the silent three) and 1 reopen",
			st.Stale, st.Timeouts, st.Reopens)
	}
	if st.Requests != st.PollsOK+st.PollsFailed {
		t.Errorf("requests %d, polls %d good + %d failed", st.Requests, st.PollsOK, st.PollsFailed)
	}
	if !sink.hasEvent("", "bus_error") {
		t.Error("no bus_error event for the silent connection")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.conns != 2 {
		t.Errorf("%d connections, want 2", srv.conns)
	}
}
