package main

import (
	"context"
	"flag"
	"strconv"
	"time"

	dmbus "tidegate/drivers/mbus"
	dmodbus "tidegate/drivers/modbus"
	pmodbus "tidegate/protocol/modbus"
)

// standaloneRead is `tidegate read --port ...`: one meter on a bus the daemon
// does not hold.
type standaloneRead struct {
	line      lineFlags
	profile   string
	secondary string
	function  int
	address   int
	addrText  string // --address as written: a CJ/T 188 address is 14 digits with leading zeros
	rawCount  int
	as        string
}

func (s *standaloneRead) flags(fs *flag.FlagSet) {
	s.line.register(fs)
	s.address = 1
	fs.Var(addressFlag{&s.address, &s.addrText}, "address", "Modbus unit id, M-Bus primary address, or a CJ/T 188 meter's 14 digits")
	fs.StringVar(&s.secondary, "secondary", "", "M-Bus secondary address instead of --address")
	fs.StringVar(&s.profile, "profile", "", "Modbus profile (register map) name or file")
	fs.IntVar(&s.function, "function", 3, "--raw: Modbus function, 3 (holding) or 4 (input registers)")
	fs.BoolFunc("raw", "Modbus: read START COUNT registers (the two arguments) and show them decoded in every type and word order", func(string) error {
		s.rawCount = -1
		return nil
	})
	fs.StringVar(&s.as, "as", "", "--raw: only this type, in every word order (or TYPE:ORDER), one register a row; e.g. float32, uint32:CDAB")
}

func (s *standaloneRead) run(ctx context.Context, e *env, args []string, asJSON bool) error {
	lc := s.line.link()
	timeout := s.line.timeout
	if timeout == 0 {
		timeout = time.Second
	}
	switch s.line.protocol {
	case "cjt188":
		return s.runCJT188(ctx, e, asJSON)
	case "mbus":
		c, err := dmbus.Open(lc, dmbus.Options{Timeout: s.line.timeout})
		if err != nil {
			return err
		}
		defer c.Close()
		r, err := c.Poll(ctx, dmbus.Meter{ID: s.meterID(), Address: byte(s.address), Secondary: s.secondary}, true)
		if err != nil {
			return err
		}
		return printReading(e.stdout, liveRecord(&r), asJSON)
	case "modbus", "modbus-tcp":
	default:
		return usageErrorf("--protocol %q: want modbus, modbus-tcp, mbus or cjt188", s.line.protocol)
	}
	if s.address < 1 || s.address > 247 {
		return usageErrorf("--address %d is out of range 1..247 for modbus", s.address)
	}
	// A profile that is not there is a usage problem: say so before the
	// port is touched.
	var p *pmodbus.Profile
	if s.rawCount == 0 {
		if s.profile == "" {
			return usageErrorf("a Modbus read needs --profile (or --raw START COUNT for an unknown meter)")
		}
		var err error
		if p, err = findProfile(s.profile); err != nil {
			return err
		}
	}
	c, err := dmodbus.Open(lc, s.line.protocol == "modbus-tcp", timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.rawCount != 0 {
		if len(args) != 2 {
			return usageErrorf("--raw takes START COUNT")
		}
		start, err1 := strconv.ParseUint(args[0], 0, 16)
		count, err2 := strconv.ParseUint(args[1], 0, 8)
		if err1 != nil || err2 != nil || count < 1 || count > pmodbus.MaxReadRegisters {
			return usageErrorf("--raw START COUNT: START 0..65535, COUNT 1..125")
		}
		regs, err := c.ReadRegisters(byte(s.address), byte(s.function), uint16(start), uint16(count))
		if err != nil {
			return err
		}
		return printRaw(e.stdout, uint16(start), regs, s.as, asJSON)
	}
	r, err := c.Poll(ctx, dmodbus.Meter{ID: s.meterID(), Address: byte(s.address), Profile: p}, true)
	if err != nil {
		return err
	}
	p.MarkImplausible(&r)
	return printReading(e.stdout, liveRecord(&r), asJSON)
}

// meterID names the meter in errors and output: the drivers write
// "meter ID: ...", so the address (or secondary address) alone.
func (s *standaloneRead) meterID() string {
	if s.secondary != "" {
		return s.secondary
	}
	return strconv.Itoa(s.address)
}
