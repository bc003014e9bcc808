// Package modbus is the Modbus RTU (serial or RTU over a TCP converter) and
// Modbus TCP driver: goburrow/modbus frames the PDUs, our transporters own
// the wire, and protocol/modbus profiles turn registers into readings.
package modbus

import (
	"context"
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
	Stray      atomic.Int64 // bytes discarded: echoes, other masters, noise, late answers drained
	Echoes     atomic.Int64 // copies of our own request (an echoing RS-485 converter)
	Stale      atomic.Int64 // Modbus TCP answers with an old transaction id, skipped
	BusyNanos  atomic.Int64 // time the line was in a transaction
}

// wire is the line as a transporter uses it: *link.Line, or the tests'
// in-memory line.
type wire interface {
	Config() link.Config
	WaitGap(gap time.Duration)
	Flush() (int, error)
	WriteUntil(ctx context.Context, b []byte, deadline time.Time) error
	ReadSome(buf []byte, deadline time.Time) (int, error)
	ReadMin(buf []byte, min int, deadline time.Time) (int, error)
}

// transporter is a goburrow/modbus Transporter for RTU frames over a wire.
// goburrow's own RTU serial handler misreads split exception frames, never
// flushes stale input, has no lock and keeps no inter-frame gap
// (shared/go-deps.md); this one does all four, frames answers with the pure
// protocol/modbus.ScanAnswer, and after a failed exchange waits for the line
// to fall silent before the next request, so that a late answer does not
// land in the next meter's.
type transporter struct {
	mu      sync.Mutex
	line    wire
	char    time.Duration // one character on the wire
	gap     time.Duration // 3.5 characters (1.75 ms above 19200 baud)
	timeout time.Duration
	c       *Counters

	echoing bool      // the line has echoed a request: an FC06 answer's first copy is the echo
	drain   time.Time // after a failed exchange: the line must be silent from here
	quiet   time.Duration
	want    int // the failed exchange's answer length, for the drain's byte cap
	pending []byte
	chunk   [256]byte
}

func newTransporter(l wire, timeout time.Duration, c *Counters) *transporter {
	cfg := l.Config()
	gap := cfg.CharTime() * 7 / 2
	if cfg.Baud > 19200 {
		gap = 1750 * time.Microsecond
	}
	return &transporter{line: l, char: cfg.CharTime(), gap: gap, timeout: timeout, c: c}
}

// drainMargin is added to the silence a drain waits for.
const drainMargin = 20 * time.Millisecond

// crcGrace is how long the line may stay quiet after a frame failed its CRC
// before the exchange is given up as a CRC error rather than waited out to
// the timeout: the answer (or a meter's retransmission) would have begun.
const crcGrace = 10 * time.Millisecond

// Send writes one request ADU and returns the response ADU. goburrow's
// packager then verifies the CRC and slave id once more.
func (t *transporter) Send(req []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := time.Now()
	defer func() { t.c.BusyNanos.Add(int64(time.Since(start))) }()
	t.c.Requests.Add(1)
	want := pmodbus.ResponseLength(req)
	if want == 0 {
		return nil, fmt.Errorf("modbus: cannot frame the answer to function 0x%02X", req[1])
	}
	if err := t.settle(); err != nil {
		return nil, err
	}
	t.line.WaitGap(t.gap)
	if n, err := t.line.Flush(); err != nil {
		return nil, err
	} else if n > 0 {
		t.c.Stray.Add(int64(n))
	}
	// goburrow's Transporter carries no context: the answer timeout bounds
	// the write too.
	if err := t.line.WriteUntil(context.Background(), req, time.Now().Add(t.timeout)); err != nil {
		return nil, err
	}
	resp, err := t.read(req, want)
	if err != nil {
		// Whatever is still on its way (the late answer, the rest of a
		// garbled one) must pass before the next request: one answer's
		// time of silence, counted from now or the last byte, and a
		// margin for a meter (or converter) that pauses mid-frame.
		t.drain = time.Now()
		t.quiet = time.Duration(want)*t.char + t.gap + drainMargin
		t.want = want
		return nil, err
	}
	if resp[1] == req[1]|0x80 {
		t.c.Exceptions.Add(1)
	}
	return resp, nil
}

// settle drains the line after a failed exchange until it has been silent
// for t.quiet, so a late answer ends before the next request starts. A line
// that never falls silent is given up on after a timeout's worth: the flush
// before the request takes what came.
func (t *transporter) settle() error {
	if t.drain.IsZero() {
		return nil
	}
	until, limit := t.drain.Add(t.quiet), t.drain.Add(t.timeout+t.quiet)
	t.drain = time.Time{}
	// The drain's own budget: the line must fall silent by limit; one that
	// is still talking then is noise, the line's fault, not the next
	// meter's.
	b := link.NewBudgetUntil(context.Background(), limit, 4*t.want+256, t.quiet, "a failed exchange (drain)")
	for {
		n, err := t.line.ReadSome(t.chunk[:], until)
		if n > 0 {
			t.c.Stray.Add(int64(n))
			if err := b.Count(t.chunk[:n]); err != nil {
				return err
			}
			until = earliest(time.Now().Add(t.quiet), limit)
		}
		if errors.Is(err, link.ErrTimeout) {
			if _, noise := b.Over(); noise != nil {
				return noise
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// read collects the answer to req, scanning what arrives with the pure
// framer: echoes, noise and frames that fail their CRC are dropped (and
// counted), an exception frame is an answer.
func (t *transporter) read(req []byte, want int) ([]byte, error) {
	deadline := time.Now().Add(t.timeout)
	tx := link.NewBudget(context.Background(), t.timeout, 4*want+256, t.gap+crcGrace, fmt.Sprintf("request % X", req))
	t.pending = t.pending[:0]
	echoes, crcs := 0, 0
	for {
		s := pmodbus.ScanAnswer(req, t.pending, t.echoing && echoes == 0)
		t.c.Stray.Add(int64(s.Stray))
		if s.Echoes > 0 {
			echoes += s.Echoes
			t.c.Echoes.Add(int64(s.Echoes))
			t.echoing = true
		}
		if s.CRCErrors > 0 {
			crcs += s.CRCErrors
			t.c.CRCErrors.Add(int64(s.CRCErrors))
			deadline = earliest(deadline, time.Now().Add(t.gap+crcGrace))
		}
		if s.Frame != nil {
			resp := append([]byte(nil), s.Frame...)
			// A complete answer is followed by t3.5 of silence; a stuck
			// transmitter goes on repeating it back to back, and those
			// repeats would answer every later poll of the same registers.
			// Two characters' time tells: the repeat's first byte is due
			// after one, and the next request's silence, counted from the
			// answer's last byte, is still kept to the microsecond.
			stray, err := link.AfterAnswer(t.line, tx, len(resp), min(t.gap, 2*t.char))
			t.c.Stray.Add(int64(stray))
			if err != nil {
				return nil, fmt.Errorf("slave %d: %w", req[0], err)
			}
			return resp, nil
		}
		t.pending = append(t.pending[:0], t.pending[s.Used:]...)
		// An answer arrives a character at a time: be woken once for
		// what must still come, when its last byte is in, rather than for
		// every byte (and not by a sleep, which overshoots the last byte
		// and so starts the next request's silence late).
		min := 1
		if crcs == 0 {
			min = stillToCome(req, t.pending, want)
		}
		n, err := t.line.ReadMin(t.chunk[:], min, deadline)
		if err != nil {
			if errors.Is(err, link.ErrTimeout) {
				if crcs > 0 {
					return nil, fmt.Errorf("%w from slave %d", pmodbus.ErrCRC, req[0])
				}
				t.c.Timeouts.Add(1)
				return nil, fmt.Errorf("slave %d: %w after %d of %d bytes", req[0], link.ErrTimeout, len(t.pending), want)
			}
			return nil, err
		}
		if err := tx.Count(t.chunk[:n]); err != nil {
			return nil, fmt.Errorf("slave %d: %w", req[0], err)
		}
		t.pending = append(t.pending, t.chunk[:n]...)
	}
}

// stillToCome is how many bytes must still arrive before the framer can
// have something to decide on, never more than the answer needs: the
// shortest frame (a 5-byte exception) while nothing is there, the rest of
// the answer (or of the exception) once its slave and function are in, one
// byte for anything else (noise, echoes, a bad frame being slid past).
func stillToCome(req, pending []byte, want int) int {
	const exception = 5
	switch {
	case len(pending) == 0:
		return min(exception, want)
	case pending[0] != req[0]:
		return 1
	case len(pending) == 1:
		return min(exception, want) - 1
	case pending[1] == req[1]:
		return max(want-len(pending), 1)
	case pending[1] == req[1]|0x80:
		return max(exception-len(pending), 1)
	}
	return 1
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
