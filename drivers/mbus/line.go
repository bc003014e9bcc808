package mbus

import (
	"context"
	"time"

	"tidegate/drivers/link"
)

// Line is what a master needs of its bus line. *link.Line (serial port or
// TCP converter) is the real one; the tests also drive the protocol logic
// over a deterministic in-memory line, so that what a master does depends
// only on what the line returns, never on how busy the machine is.
type Line interface {
	// Config is the line's frame format, for bit and character times.
	Config() link.Config
	// WaitGap returns once gap has passed since the last traffic.
	WaitGap(gap time.Duration)
	// Flush drops pending input: n stray bytes, or -1 when not counted.
	Flush() (n int, err error)
	// Write sends one frame and returns once it has left.
	WriteUntil(ctx context.Context, b []byte, deadline time.Time) error
	// ReadSome reads what arrives before deadline, (0, link.ErrTimeout)
	// when nothing did.
	ReadSome(buf []byte, deadline time.Time) (int, error)
}

var _ Line = (*link.Line)(nil)
