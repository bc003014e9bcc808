package main

import (
	"context"
	"fmt"
	"time"

	dcjt "tidegate/drivers/cjt188"
	"tidegate/protocol/cjt188"
)

// scanCJT188 is `scan --protocol cjt188`: the broadcast read-address. With
// one meter on the line its answer is that meter's address; when several
// answer at once their replies garble each other, and that is reported as
// such, never taken for a meter. Both DI orders are tried, since a meter
// ignores a request in the order it does not speak.
func scanCJT188(ctx context.Context, e *env, l lineFlags, appendTo string) error {
	if appendTo != "" {
		return usageErrorf("--append-config: not for cjt188; add the address printed on the meter (see the scan's output) to the config by hand")
	}
	start := time.Now()
	timeout := l.timeout
	if timeout == 0 {
		timeout = time.Second // a technician waits a second; a slow meter is not missed
	}
	c, err := dcjt.Open(l.link(), dcjt.Options{Timeout: timeout, Preamble: 4}, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, order := range []cjt188.DIOrder{cjt188.HighFirst, cjt188.LowFirst} {
		f, err := c.ReadAddress(ctx, order)
		if err != nil {
			return err
		}
		switch {
		case f.Several:
			fmt.Fprintf(e.stdout, "several meters answered the broadcast read-address at once (%d bytes, %s order): no address can be read this way.\n"+
				"Enter the 14-digit addresses printed on the meters in the config, or connect one meter at a time and scan again.\n",
				len(f.Raw), order)
			return &exitError{code: exitFailure, err: fmt.Errorf("%w: several meters on the line", dcjt.ErrCollision)}
		case f.Count == 1:
			fmt.Fprintf(e.stdout, "one meter: address %s, type %s (%s), DI order %s\n", f.Address, f.Type, f.Type.Medium(), order)
			fmt.Fprintf(e.stdout, "config: - {id: ..., bus: ..., address: \"%s\", di_order: %s}\n", f.Address, order)
			fmt.Fprintf(e.stdout, "1 meter found in %s\n", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintf(e.stdout, "no meter answered the broadcast read-address (either DI order)\n0 meters found in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}
