package main

import (
	"context"
	"errors"
	"flag"
	"time"
)

// standaloneRead is `tidegate read --port ...`: one meter on a bus the daemon
// does not hold.
type standaloneRead struct {
	port, protocol, profile, parity, secondary string
	address, baud                              int
	timeout                                    time.Duration
	rawCount                                   int
}

func (s *standaloneRead) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.port, "port", "", "serial device (e.g. /dev/ttyUSB0) or host:port of a converter: read without the daemon")
	fs.StringVar(&s.protocol, "protocol", "modbus", "modbus | mbus | modbus-tcp")
	fs.IntVar(&s.address, "address", 1, "Modbus unit id or M-Bus primary address")
	fs.StringVar(&s.secondary, "secondary", "", "M-Bus secondary address instead of --address")
	fs.StringVar(&s.profile, "profile", "", "Modbus profile (register map) name or file")
	fs.IntVar(&s.baud, "baud", 0, "baud rate (default 9600 modbus, 2400 mbus)")
	fs.StringVar(&s.parity, "parity", "", "none | even | odd (default none modbus, even mbus)")
	fs.DurationVar(&s.timeout, "timeout", time.Second, "answer timeout")
	fs.BoolFunc("raw", "Modbus: read START COUNT registers (the two arguments) and show them decoded in every type and word order", func(string) error {
		s.rawCount = -1
		return nil
	})
}

// errNoDrivers: this build was made before the drivers package existed.
var errNoDrivers = errors.New("stand-alone reads need the drivers package, which this build does not have")

func (s *standaloneRead) run(ctx context.Context, e *env, args []string, asJSON bool) error {
	return errNoDrivers
}
