package simulator

import (
	"time"

	"tidegate/simulator/water"
)

// Responder is one device on a bus. It sees every complete request frame, as
// every slave on RS-485 does, and answers the ones addressed to it.
type Responder interface {
	// Respond returns the reply to req at simulation time now, nil to stay silent.
	Respond(req []byte, now time.Time) []byte
}

// delayedResponder is implemented by responders that may answer late (the
// fault injector): the bus waits the extra delay after the turnaround.
type delayedResponder interface {
	RespondDelayed(req []byte, now time.Time) ([]byte, time.Duration)
}

// SnapshotFunc gives a meter's state at simulation time now.
type SnapshotFunc func(now time.Time) water.Snapshot
