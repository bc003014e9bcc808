package modbus

import (
	"context"
	"time"

	"tidegate/drivers/link"
)

// memLine is a deterministic in-memory RS-485 line: a request written
// produces the slaves' bytes at once, a read takes the next chunk, and a
// read with nothing to take is the timeout firing, whatever the clock says.
// Bytes a slave sends late arrive only after the master's timeout has fired
// (on the next read); a request written while they are still on their way
// collides with them on the half-duplex line, and neither gets through.
type memLine struct {
	cfg    link.Config
	echo   bool // the converter echoes every request
	duplex bool // TCP: a late answer never collides with a request
	answer func(req []byte) (chunks [][]byte, late bool)

	queue    [][]byte // arrived, not yet read
	inFlight [][]byte // late bytes still on the wire
	armed    bool     // a read has timed out: the late bytes arrive on the next one
	written  [][]byte
	flushed  int
	collided int
	closed   bool
	// endless: with nothing else queued, the line repeats these bytes for
	// ever (a babbler, a stuck transmitter); read counts what was taken.
	endless []byte
	at      int
	read    int
}

func (m *memLine) Config() link.Config   { return m.cfg }
func (m *memLine) WaitGap(time.Duration) {}
func (m *memLine) Close() error          { m.closed = true; return nil }

func (m *memLine) Flush() (int, error) {
	n := 0
	for _, c := range m.queue {
		n += len(c)
	}
	m.queue, m.flushed = nil, m.flushed+n
	return n, nil
}

func (m *memLine) ReadReady(buf []byte) (int, error) {
	m.arrive()
	if len(m.queue) == 0 {
		return 0, nil
	}
	return m.take(buf), nil
}

func (m *memLine) Write(b []byte) error {
	req := append([]byte(nil), b...)
	m.written = append(m.written, req)
	if len(m.inFlight) > 0 && !m.duplex {
		// Two talkers: the late answer and the request garble each other.
		m.collided++
		m.inFlight, m.armed = nil, false
		return nil
	}
	if m.echo {
		m.queue = append(m.queue, req)
	}
	chunks, late := m.answer(req)
	if late {
		m.inFlight = append(m.inFlight, chunks...)
		m.armed = false
		return nil
	}
	m.queue = append(m.queue, chunks...)
	return nil
}

// arrive delivers the late bytes once a timeout has fired: they come
// before anything sent after them.
func (m *memLine) arrive() {
	if m.armed && len(m.inFlight) > 0 {
		m.queue, m.inFlight, m.armed = append(m.inFlight, m.queue...), nil, false
	}
}

func (m *memLine) ReadSome(buf []byte, _ time.Time) (int, error) {
	m.arrive()
	if len(m.queue) == 0 && len(m.endless) > 0 {
		n := min(len(buf), 64)
		for i := range n {
			buf[i] = m.endless[(m.at+i)%len(m.endless)]
		}
		m.at += n
		m.read += n
		return n, nil
	}
	if len(m.queue) == 0 {
		m.armed = len(m.inFlight) > 0
		return 0, link.ErrTimeout
	}
	return m.take(buf), nil
}

// ReadMin takes the next chunk, as ReadSome: the in-memory line delivers
// whole chunks, and a short one is what a real line returns at the
// deadline.
func (m *memLine) ReadMin(buf []byte, _ int, deadline time.Time) (int, error) {
	return m.ReadSome(buf, deadline)
}

func (m *memLine) take(buf []byte) int {
	n := copy(buf, m.queue[0])
	if n < len(m.queue[0]) {
		m.queue[0] = m.queue[0][n:]
	} else {
		m.queue = m.queue[1:]
	}
	return n
}

// WriteUntil: an in-memory line takes a frame at once.
func (m *memLine) WriteUntil(_ context.Context, b []byte, _ time.Time) error { return m.Write(b) }
