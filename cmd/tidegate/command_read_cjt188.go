package main

import (
	"context"
	"strconv"
	"time"

	dcjt "tidegate/drivers/cjt188"
	"tidegate/protocol/cjt188"
)

// addressFlag is --address: a number, and its text, since a CJ/T 188
// address is 14 digits whose leading zeros matter (not octal).
type addressFlag struct {
	n    *int
	text *string
}

func (a addressFlag) String() string {
	if a.n == nil {
		return "1"
	}
	return strconv.Itoa(*a.n)
}

func (a addressFlag) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	*a.n, *a.text = int(v), s
	return nil
}

// runCJT188 is `read --port P --protocol cjt188 --address 78330011223344`:
// one 901F read, with the DI order given by --di-order (default both).
func (s *standaloneRead) runCJT188(ctx context.Context, e *env, asJSON bool) error {
	a, err := cjt188.ParseAddress(s.addrText)
	if err != nil || a.IsBroadcast() {
		return usageErrorf("--address: the meter's 14 digits as printed on it (e.g. 78330011223344) for cjt188")
	}
	timeout := s.line.timeout
	if timeout == 0 {
		timeout = time.Second // as for a stand-alone Modbus read
	}
	c, err := dcjt.Open(s.line.link(), dcjt.Options{Timeout: timeout, Preamble: 2}, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	var last error
	// The meter ignores a request in the DI order it does not speak: try both.
	for _, o := range []cjt188.DIOrder{cjt188.HighFirst, cjt188.LowFirst} {
		res, err := c.Poll(ctx, dcjt.PollMeter{Meter: dcjt.Meter{ID: "meter", Address: a, Order: o}}, true)
		if err == nil {
			return printReading(e.stdout, liveRecord(&res.Reading), asJSON)
		}
		last = err
	}
	return last
}
