package cjt188

import (
	"context"
	"time"

	"tidegate/drivers/link"
)

// memLine is a deterministic in-memory line: whatever the far end answers
// to a write is waiting at once, and reading an empty line is an immediate
// timeout. No wall clock is involved, so logic tests hold on a busy machine.
type memLine struct {
	cfg     link.Config
	respond func(req []byte) []byte
	in      []byte
	late    []byte // arrives right after the next request (a slow meter's answer to the one before)
	writes  [][]byte
	chunk   int // bytes per read, to exercise framing across reads (default 5)
	flushed int
	// endless: once in is empty, the line repeats these bytes for ever (a
	// babbler, a stuck transmitter); read counts what the master took.
	endless  []byte
	at, read int
}

func (l *memLine) Config() link.Config   { return l.cfg }
func (l *memLine) WaitGap(time.Duration) {}
func (l *memLine) Close() error          { return nil }

func (l *memLine) Flush() (int, error) {
	n := len(l.in)
	l.flushed += n
	l.in = nil
	return n, nil
}

func (l *memLine) Write(b []byte) error {
	l.writes = append(l.writes, append([]byte(nil), b...))
	l.in = append(l.in, l.late...)
	l.late = nil
	if l.respond != nil {
		l.in = append(l.in, l.respond(b)...)
	}
	return nil
}

func (l *memLine) ReadSome(buf []byte, _ time.Time) (int, error) {
	if len(l.in) == 0 && len(l.endless) > 0 {
		n := 0
		for n < min(len(buf), max(l.chunk, 5)) {
			buf[n] = l.endless[l.at%len(l.endless)]
			n, l.at = n+1, l.at+1
		}
		l.read += n
		return n, nil
	}
	if len(l.in) == 0 {
		return 0, link.ErrTimeout
	}
	c := l.chunk
	if c <= 0 {
		c = 5
	}
	n := copy(buf[:min(len(buf), c)], l.in)
	l.in = l.in[n:]
	return n, nil
}

// WriteUntil: an in-memory line takes a frame at once.
func (l *memLine) WriteUntil(_ context.Context, b []byte, _ time.Time) error { return l.Write(b) }
