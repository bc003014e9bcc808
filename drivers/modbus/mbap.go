package modbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
)

// failLimit: this many requests in a row without a byte of answer and a
// Modbus TCP connection is taken for dead (a gateway that rebooted behind a
// NAT leaves it half open): the bus closes it and dials again with backoff.
// A gateway answers for a dead meter behind it with an exception (0x0A,
// 0x0B), so silence is the connection's, not a meter's.
const failLimit = 3

// mbapWire is a TCP line: a wire that can also take what has already
// arrived without waiting.
type mbapWire interface {
	wire
	ReadReady(buf []byte) (int, error)
}

// mbapTransporter carries Modbus TCP ADUs (goburrow's TCP packager numbers
// and checks them). goburrow's own TCP transport reads whatever comes next
// as the answer, so one late answer put every later request one
// transaction behind, for good. This one skips answers with another
// transaction id, takes late answers out of the socket before each request
// without waiting, and gives up a connection that keeps failing.
type mbapTransporter struct {
	mu      sync.Mutex
	line    mbapWire
	timeout time.Duration
	c       *Counters
	silent  int    // requests in a row that got no byte back
	pending []byte // received, not yet framed: a frame may straddle two reads
	chunk   [512]byte
}

func newMBAPTransporter(l mbapWire, timeout time.Duration, c *Counters) *mbapTransporter {
	return &mbapTransporter{line: l, timeout: timeout, c: c}
}

// Send writes one request ADU and returns the answer with its transaction id.
func (t *mbapTransporter) Send(req []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := time.Now()
	defer func() { t.c.BusyNanos.Add(int64(time.Since(start))) }()
	t.c.Requests.Add(1)
	if len(req) < pmodbus.MBAPHeaderLength+1 {
		return nil, fmt.Errorf("modbus tcp: request of %d bytes", len(req))
	}
	// Late answers already in the socket: framed (and skipped) now, so a
	// frame cut between two reads keeps its place in the stream.
	for {
		n, err := t.line.ReadReady(t.chunk[:])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", link.ErrFailing, err)
		}
		if n == 0 {
			break
		}
		if len(t.pending)+n > 4096 {
			// More waiting than any late answers could be: a stream.
			got := len(t.pending) + n
			t.pending = t.pending[:0]
			return nil, &link.NoiseError{Bytes: got, Over: time.Since(start), Sample: append([]byte(nil), t.chunk[:min(n, 16)]...), After: "the previous request", Capped: true}
		}
		t.pending = append(t.pending, t.chunk[:n]...)
	}
	deadline := time.Now().Add(t.timeout)
	if err := t.line.WriteUntil(context.Background(), req, deadline); err != nil {
		return nil, err
	}
	heard := false
	for {
		s, err := pmodbus.ScanMBAP(req, t.pending)
		t.c.Stale.Add(int64(s.Stale))
		if err != nil {
			t.pending = t.pending[:0]
			return nil, fmt.Errorf("%w: %w", link.ErrFailing, err)
		}
		if s.Frame != nil {
			resp := append([]byte(nil), s.Frame...)
			t.pending = append(t.pending[:0], t.pending[s.Used:]...)
			t.silent = 0
			if resp[pmodbus.MBAPHeaderLength]&0x80 != 0 {
				t.c.Exceptions.Add(1)
			}
			return resp, nil
		}
		t.pending = append(t.pending[:0], t.pending[s.Used:]...)
		n, err := t.line.ReadSome(t.chunk[:], deadline)
		if errors.Is(err, link.ErrTimeout) {
			t.c.Timeouts.Add(1)
			if !heard {
				t.silent++
			}
			err = fmt.Errorf("unit %d: %w", req[6], link.ErrTimeout)
			if t.silent >= failLimit {
				return nil, fmt.Errorf("%w: %d requests in a row unanswered: %w", link.ErrFailing, t.silent, err)
			}
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		heard = heard || n > 0
		if len(t.pending)+n > 4096 {
			return nil, fmt.Errorf("%w: %d bytes and no answer", link.ErrFailing, len(t.pending)+n)
		}
		t.pending = append(t.pending, t.chunk[:n]...)
	}
}
