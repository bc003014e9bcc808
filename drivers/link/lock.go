package link

import (
	"errors"
	"fmt"
)

// ErrPortBusy: another process (or another bus of this one) holds the
// serial port. Test with errors.Is; the error also names the holder.
var ErrPortBusy = errors.New("port is in use")

// DefaultLockDir is where UUCP-style lock files (LCK..ttyUSB0) live, the
// FHS place minicom, picocom and ModemManager look.
const DefaultLockDir = "/run/lock"

// BusyError is ErrPortBusy with the holder, as far as it is known.
type BusyError struct {
	Device string
	PID    int    // 0 if unknown
	Name   string // the holder's command name, if known
}

func (e *BusyError) Error() string {
	switch {
	case e.PID > 0 && e.Name != "":
		return fmt.Sprintf("port %s is in use by %s (pid %d)", e.Device, e.Name, e.PID)
	case e.PID > 0:
		return fmt.Sprintf("port %s is in use by pid %d", e.Device, e.PID)
	}
	return fmt.Sprintf("port %s is in use by another process", e.Device)
}

func (e *BusyError) Is(target error) bool { return target == ErrPortBusy }
