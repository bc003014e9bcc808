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
