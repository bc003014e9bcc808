package daemon

import "golang.org/x/sys/unix"

// systemClock reads the kernel's clock state with adjtimex(2) (read only:
// modes 0 changes nothing, and needs no privilege).
type systemClock struct{}

func (systemClock) State() ClockState {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return ClockState{Err: err}
	}
	return ClockState{
		Synchronised: state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0,
		MaxErrorMS:   float64(tx.Maxerror) / 1000,
	}
}
