// Package modbus is the Modbus RTU (serial or RTU over a TCP converter) and
// Modbus TCP driver: goburrow/modbus frames the PDUs, our transporter owns
// the wire, and protocol/modbus profiles turn registers into readings.
package modbus

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pmodbus "tidegate/protocol/modbus"

	"tidegate/drivers/link"
)

// Counters are what the transporter saw on the wire.
type Counters struct {
	Requests   atomic.Int64
	Timeouts   atomic.Int64
	CRCErrors  atomic.Int64
	Exceptions atomic.Int64
	Stray      atomic.Int64 // bytes discarded before a frame: echoes, other masters, noise
	BusyNanos  atomic.Int64 // time the line was in a transaction
}

// transporter is a goburrow/modbus Transporter over a link.Line. goburrow's
// own RTU serial handler misreads split exception frames, never flushes
// stale input, has no lock and keeps no inter-frame gap (shared/go-deps.md);
// this one does all four.
type transporter struct {
	mu      sync.Mutex
	line    *link.Line
	gap     time.Duration // 3.5 characters (1.75 ms above 19200 baud)
	timeout time.Duration
	c       *Counters
}

func newTransporter(l *link.Line, timeout time.Duration, c *Counters) *transporter {
	cfg := l.Config()
	gap := cfg.CharTime() * 7 / 2
	if cfg.Baud > 19200 {
		gap = 1750 * time.Microsecond
	}
	return &transporter{line: l, gap: gap, timeout: timeout, c: c}
}

// Send writes one request ADU and returns the response ADU. goburrow's
// packager then verifies the CRC and slave id.
func (t *transporter) Send(req []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := time.Now()
	defer func() { t.c.BusyNanos.Add(int64(time.Since(start))) }()
	t.c.Requests.Add(1)
	t.line.WaitGap(t.gap)
	if n, err := t.line.Flush(); err != nil {
		return nil, err
	} else if n > 0 {
		t.c.Stray.Add(int64(n))
	}
	if err := t.line.Write(req); err != nil {
		return nil, err
	}
	want := pmodbus.ResponseLength(req)
	if want == 0 {
		return nil, fmt.Errorf("modbus: cannot frame the answer to function 0x%02X", req[1])
	}
	resp, err := t.readFrame(req[0], req[1], want, time.Now().Add(t.timeout))
	if err != nil {
		if errors.Is(err, link.ErrTimeout) {
			t.c.Timeouts.Add(1)
		}
		return resp, err
	}
	if !pmodbus.CheckCRC(resp) {
		t.c.CRCErrors.Add(1)
		return nil, fmt.Errorf("%w from slave %d", pmodbus.ErrCRC, req[0])
	}
	if resp[1] == req[1]|0x80 {
		t.c.Exceptions.Add(1)
	}
	return resp, nil
}

// readFrame reads until a whole answer of want bytes, or a 5-byte exception
// frame, is in. Bytes before the frame's start (slave id, then function or
// function|0x80) are stray and dropped: a second master, an echo, noise.
func (t *transporter) readFrame(slave, fc byte, want int, deadline time.Time) ([]byte, error) {
	buf := make([]byte, 0, want)
	chunk := make([]byte, 256)
	for {
		// Re-synchronise on the frame start.
		for len(buf) >= 1 && (buf[0] != slave || (len(buf) >= 2 && buf[1] != fc && buf[1] != fc|0x80)) {
			buf = buf[1:]
			t.c.Stray.Add(1)
		}
		if len(buf) >= 2 && buf[1] == fc|0x80 && len(buf) >= pmodbus.ExceptionLength {
			return buf[:pmodbus.ExceptionLength], nil
		}
		if len(buf) >= want {
			return buf[:want], nil
		}
		n, err := t.line.ReadSome(chunk, deadline)
		if err != nil {
			if errors.Is(err, link.ErrTimeout) {
				return buf, fmt.Errorf("slave %d: %w after %d of %d bytes", slave, link.ErrTimeout, len(buf), want)
			}
			return buf, err
		}
		if len(buf)+n > 4*want+256 {
			return nil, fmt.Errorf("slave %d: flooded with %d bytes", slave, len(buf)+n)
		}
		buf = append(buf, chunk[:n]...)
	}
}
