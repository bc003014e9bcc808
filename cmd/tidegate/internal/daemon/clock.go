package daemon

// gatewayClock says whether the gateway's own clock can be trusted: the
// health message reports it, and a meter's clock is set from it only when
// it is synchronised (never from a clock that free-runs since boot).
// systemClock is the kernel's view (clock_linux.go); tests use a fake.
type gatewayClock interface {
	State() ClockState
}

// ClockState is the gateway clock's synchronisation as the kernel keeps it
// (adjtimex(2): NTP, chrony or a GPS daemon clear STA_UNSYNC when they
// discipline the clock).
type ClockState struct {
	Synchronised bool
	MaxErrorMS   float64 // the kernel's maximum error estimate; 0 when unknown
	Err          error   // the state could not be read: not synchronised
}

// gatewayClock is the clock health reports and the buses set meter clocks
// by: d.clock where a test gave one, else the kernel's.
func (d *Daemon) gatewayClock() gatewayClock {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clock != nil {
		return d.clock
	}
	return systemClock{}
}

// busClock is the daemon's gateway clock as a bus asks it
// (drivers.GatewayClock): one answer for health and for meter clock sync.
type busClock struct{ d *Daemon }

func (c busClock) Synchronized() (bool, error) {
	s := c.d.gatewayClock().State()
	return s.Synchronised, s.Err
}
