package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	dmbus "tidegate/drivers/mbus"
	dmodbus "tidegate/drivers/modbus"
)

// runScan finds the meters on a bus the daemon does not hold: a Modbus
// address probe, an M-Bus primary scan, or the M-Bus secondary-address
// wildcard search. It prints a table and can append the meters to a config.
func runScan(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("scan", e)
	var l lineFlags
	l.register(fs)
	bus := fs.String("bus", "", "bus name the found meters get in the config (default: the port's base name)")
	secondary := fs.Bool("secondary", false, "M-Bus: secondary-address wildcard search instead of the primary scan")
	from := fs.Int("from", 1, "first address to probe")
	to := fs.Int("to", 0, "last address to probe (default 247 modbus, 250 mbus)")
	function := fs.Int("function", 3, "Modbus: function to probe with, 3 or 4")
	register := fs.Int("register", 0, "Modbus: register address to probe")
	appendTo := fs.String("append-config", "", "add the meters found to this config file (validated, comments kept)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if l.port == "" || fs.NArg() != 0 {
		return usageErrorf("usage: tidegate scan --port DEVICE|HOST:PORT --protocol modbus|mbus --bus NAME [--secondary] [--append-config FILE]")
	}
	if *bus == "" {
		*bus = "bus-" + baseName(l.port)
	}
	if *to == 0 {
		*to = 247
		if l.protocol == "mbus" {
			*to = 250
		}
	}
	tty := isTTY(e.stderr)
	var found []foundMeter
	start := time.Now()
	switch l.protocol {
	case "modbus", "modbus-tcp":
		if *from < 1 || *to > 247 || *from > *to {
			return usageErrorf("--from/--to: a range within 1..247")
		}
		timeout := l.timeout
		if timeout == 0 {
			timeout = 200 * time.Millisecond
		}
		c, err := dmodbus.Open(l.link(), l.protocol == "modbus-tcp", timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		pr := newProgress(e.stderr, tty, "modbus scan")
		for a := *from; a <= *to; a++ {
			if ctx.Err() != nil {
				break
			}
			ok, err := c.Probe(byte(a), byte(*function), uint16(*register))
			if err != nil {
				pr.finish()
				return err
			}
			if ok {
				found = append(found, foundMeter{Bus: *bus, Address: a})
			}
			pr.update(a-*from+1, *to-*from+1, len(found))
		}
		pr.finish()
	case "mbus":
		c, err := dmbus.Open(l.link(), dmbus.Options{Timeout: l.timeout})
		if err != nil {
			return err
		}
		defer c.Close()
		if *secondary {
			pr := newProgress(e.stderr, tty, "m-bus secondary scan")
			secs, err := dmbus.ScanSecondary(ctx, c.Master, func(p dmbus.ScanProgress) {
				pr.update(patternProgress(p.Pattern), 100, p.Found)
			})
			pr.update(100, 100, len(secs))
			pr.finish()
			if err != nil && len(secs) == 0 {
				return err
			}
			for _, s := range secs {
				found = append(found, foundMeter{Bus: *bus, Address: -1, Secondary: fmt.Sprintf("%08d", s.ID),
					Note: fmt.Sprintf("%s version %d medium 0x%02X", s.ManufacturerCode(), s.Version, s.Medium)})
			}
		} else {
			if *from < 0 || *to > 250 || *from > *to {
				return usageErrorf("--from/--to: a range within 0..250")
			}
			pr := newProgress(e.stderr, tty, "m-bus primary scan")
			res, err := dmbus.ScanPrimary(ctx, c.Master, *from, *to, func(p dmbus.ScanProgress) {
				pr.update(p.Address-*from+1, *to-*from+1, p.Found)
			})
			pr.finish()
			if err != nil && len(res) == 0 {
				return err
			}
			for _, r := range res {
				f := foundMeter{Bus: *bus, Address: int(r.Address)}
				if r.Collision {
					f.Note = "several meters answer this address"
				}
				found = append(found, f)
			}
		}
	default:
		return usageErrorf("--protocol %q: want modbus, modbus-tcp or mbus", l.protocol)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUS\tADDRESS\tSECONDARY\tNOTE")
	for _, f := range found {
		addr := "-"
		if f.Address >= 0 {
			addr = strconv.Itoa(f.Address)
		}
		sec := f.Secondary
		if sec == "" {
			sec = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Bus, addr, sec, f.Note)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d meters found in %s\n", len(found), time.Since(start).Round(time.Millisecond))
	if *appendTo != "" && len(found) > 0 {
		n, err := appendMeters(*appendTo, found)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d meters added to %s (check profiles and poll intervals, then 'tidegate config validate')\n", n, *appendTo)
	}
	return nil
}

// patternProgress places a wildcard pattern in the search's order by its
// first two identification digits, for an estimate of the time left.
func patternProgress(p string) int {
	if len(p) < 2 {
		return 0
	}
	d0, d1 := int(p[0]-'0'), int(p[1]-'0')
	if d0 < 0 || d0 > 9 {
		return 0
	}
	if d1 < 0 || d1 > 9 {
		return d0 * 10
	}
	return d0*10 + d1
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
