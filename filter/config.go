// Package filter separates real use from self-rotation (phantom volume that
// pressure surges make a bidirectional meter register) in a meter's polled
// totals, and flags leaks, bursts, backflow, no-use and meter faults. It is
// pure: readings in, filtered readings, daily summaries and events out; no
// clock, no I/O. See README.md for the method.
package filter

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig reports a configuration the filter cannot work with.
var ErrConfig = errors.New("filter: bad configuration")

// Config tunes the filter. The zero value is usable: every zero field takes
// the default named beside it.
type Config struct {
	// Window is how long an interval may be held back so that the reverse
	// half of an oscillation, registered after the forward half, can cancel
	// it (default 15m, at most 1h).
	Window time.Duration
	// LeakFlow is the night flow, m3/h, above which a night with no quiet
	// hour is a leak (default 0.005 = 5 L/h, as in the example config).
	LeakFlow float64
	// NoUse is the span without consumption that raises no_use (default 48h).
	NoUse time.Duration
	// BurstFlow is the flow, m3/h, that is a burst when it lasts BurstFor
	// (defaults 1.2 m3/h, 15m).
	BurstFlow float64
	BurstFor  time.Duration
	// MaxPipeFlow is the most the pipe can carry, m3/h; a faster total is a
	// meter fault (default 10).
	MaxPipeFlow float64
	// InitialRatio is the reverse/forward gain ratio assumed before a meter's
	// own is learned: the middle of the gains
	// seen on residential ultrasonic meters, a little low since
	// keeping phantom costs more than removing a little use (default 0.75).
	InitialRatio float64
	// Location gives local days and nights (default UTC).
	Location *time.Location
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = 15 * time.Minute
	}
	if c.LeakFlow == 0 {
		c.LeakFlow = 0.005
	}
	if c.NoUse == 0 {
		c.NoUse = 48 * time.Hour
	}
	if c.BurstFlow == 0 {
		c.BurstFlow = 1.2
	}
	if c.BurstFor == 0 {
		c.BurstFor = 15 * time.Minute
	}
	if c.MaxPipeFlow == 0 {
		c.MaxPipeFlow = 10
	}
	if c.InitialRatio == 0 {
		c.InitialRatio = 0.75
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	return c
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Window < 0 || c.Window > time.Hour:
		return fmt.Errorf("%w: window %v not in [0, 1h]", ErrConfig, c.Window)
	case c.LeakFlow < 0 || c.BurstFlow < 0 || c.MaxPipeFlow < 0:
		return fmt.Errorf("%w: flows must not be negative", ErrConfig)
	case c.NoUse < 0 || c.BurstFor < 0:
		return fmt.Errorf("%w: spans must not be negative", ErrConfig)
	case c.InitialRatio < 0.2 || c.InitialRatio > 2:
		return fmt.Errorf("%w: initial ratio %v not in [0.2, 2]", ErrConfig, c.InitialRatio)
	}
	return nil
}
