package drivers

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// KernelClock is the gateway clock as the kernel's NTP state tells it, the
// GatewayClock a bus uses unless told otherwise
// (what `timedatectl` shows as "System clock synchronized"): adjtimex
// reports TIME_ERROR, or STA_UNSYNC in its status, until an NTP client
// (chrony, systemd-timesyncd, ntpd) has disciplined it.
type KernelClock struct{}

func (KernelClock) Synchronized() (bool, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, fmt.Errorf("adjtimex: %w", err)
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, nil
}
