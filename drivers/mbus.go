package drivers

import "errors"

// openMBus opens an M-Bus master; it arrives with drivers/mbus.
func openMBus(cfg BusConfig) (poller, error) {
	return nil, errors.New("M-Bus master not available in this build yet")
}
