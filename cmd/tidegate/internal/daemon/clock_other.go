//go:build !linux

package daemon

import "errors"

// systemClock: only Linux says whether its clock is synchronised.
type systemClock struct{}

func (systemClock) State() ClockState {
	return ClockState{Err: errors.New("clock state unknown on this system")}
}
