// Package drivers owns all I/O to meters. A Bus is one serial line or one
// TCP converter, polled by its own goroutine one request at a time; buses run
// in parallel and share nothing. Protocol specifics live in drivers/modbus and
// drivers/mbus and end here: what leaves a bus is a reading.Reading (or an
// event) handed to a Sink. The package knows nothing of the filter or buffer.
package drivers

import "tidegate/reading"

// Sink receives what the buses produce. It is called from the buses'
// goroutines and must not block for long: a slow sink slows the bus.
type Sink interface {
	Reading(r reading.Reading, kind reading.Kind) // kind is KindReading or KindBilling
	Event(e reading.Event)
}
