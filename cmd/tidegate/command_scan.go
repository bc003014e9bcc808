package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/drivers/link"
	dmbus "tidegate/drivers/mbus"
	dmodbus "tidegate/drivers/modbus"
	pmbus "tidegate/protocol/mbus"
)

// exitInterrupted is the shell's code for a command ended by SIGINT.
const exitInterrupted = 130

// runScan finds the meters on a bus the daemon does not hold: a Modbus
// address probe, an M-Bus primary scan, or the M-Bus secondary-address
// wildcard search. It prints a table and can append the meters to a config.
//
// A scan never aborts on one address: a timeout, CRC error or garbled
// answer is tried once more and, if it stays bad, noted in the table. Only
// the line itself failing stops it, and then it says how far it got and
// exits 1; Ctrl-C exits 130. Either way nothing is written to the config.
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
	profile := fs.String("profile", "", "Modbus: the profile (register map) the found meters get in --append-config")
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
	if *profile != "" && l.protocol == "mbus" {
		return usageErrorf("--profile is for Modbus meters; M-Bus meters describe themselves")
	}
	tty := isTTY(e.stderr)
	var sc scanResult
	start := time.Now()
	if l.protocol == "cjt188" {
		return scanCJT188(ctx, e, l, *appendTo)
	}
	var mc *dmbus.Client
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
		sc = scanAddresses(ctx, *from, *to, func(a int) (bool, error) {
			return c.Probe(byte(a), byte(*function), uint16(*register))
		}, func(done, found int) { pr.update(done, *to-*from+1, found) })
		pr.finish()
		for i := range sc.found {
			sc.found[i].Bus, sc.found[i].Profile = *bus, *profile
		}
	case "mbus":
		c, err := dmbus.Open(l.link(), dmbus.Options{Timeout: l.timeout})
		if err != nil {
			return err
		}
		defer c.Close()
		mc = c
		if *secondary {
			pr := newProgress(e.stderr, tty, "m-bus secondary scan")
			last := ""
			var notes []string
			secs, err := dmbus.ScanSecondary(ctx, c.Master, func(p dmbus.ScanProgress) {
				last = p.Pattern
				pr.update(patternProgress(p.Pattern), 100, p.Found)
				switch {
				case p.Rejected != nil:
					notes = append(notes, fmt.Sprintf("pattern %s: a telegram named %08d, which an exact selection did not confirm (merged answers): not listed, searched below", p.Pattern, p.Rejected.ID))
				case p.Retried:
					notes = append(notes, fmt.Sprintf("pattern %s answered late: selected again with a longer window (%s)", p.Pattern, p.Result))
				case p.Unresolved:
					notes = append(notes, fmt.Sprintf("pattern %s: several meters answer and no selection splits them: not listed", p.Pattern))
				}
			})
			if err == nil {
				pr.update(100, 100, len(secs))
			}
			pr.finish()
			for _, n := range notes {
				fmt.Fprintln(e.stderr, "note:", n)
			}
			for _, s := range secs {
				sc.found = append(sc.found, foundMeter{Bus: *bus, Address: -1, Secondary: fmt.Sprintf("%08d", s.ID),
					Note: fmt.Sprintf("%s version %d medium 0x%02X", s.ManufacturerCode(), s.Version, s.Medium)})
			}
			switch {
			case err != nil && ctx.Err() != nil:
				sc.stop = &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted after %d%% of the secondary search (%d meters found; nothing written)", patternProgress(last), len(secs))}
			case err != nil:
				sc.stop = fmt.Errorf("the secondary search did not cover its range: stopped at pattern %s after %d meters: %w; nothing written", last, len(secs), err)
			}
		} else {
			if *from < 0 || *to > 250 || *from > *to {
				return usageErrorf("--from/--to: a range within 0..250")
			}
			pr := newProgress(e.stderr, tty, "m-bus primary scan")
			sc = scanAddresses(ctx, *from, *to, func(a int) (bool, error) {
				r, err := c.Ping(ctx, byte(a))
				switch {
				case err != nil:
					return false, err
				case r == dmbus.ProbeCollision:
					return false, dmbus.ErrCollision
				}
				return r == dmbus.ProbeOne, nil
			}, func(done, found int) { pr.update(done, *to-*from+1, found) })
			pr.finish()
			for i := range sc.found {
				sc.found[i].Bus = *bus
			}
		}
	default:
		return usageErrorf("--protocol %q: want modbus, modbus-tcp, mbus or cjt188", l.protocol)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUS\tADDRESS\tSECONDARY\tNOTE")
	rows := append(append([]foundMeter(nil), sc.found...), sc.noted...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Address < rows[j].Address })
	for _, f := range rows {
		addr := "-"
		if f.Address >= 0 {
			addr = strconv.Itoa(f.Address)
		}
		sec := f.Secondary
		if sec == "" {
			sec = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", *bus, addr, sec, f.Note)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d meters found in %s\n", len(sc.found), time.Since(start).Round(time.Millisecond))
	if sc.stop != nil {
		return sc.stop
	}
	if *appendTo != "" && len(sc.found) > 0 {
		// The new bus, should the file lack it, is the one just scanned.
		lc := l.link()
		nb := config.Bus{Name: *bus, Protocol: l.protocol, Device: lc.Device, TCP: lc.TCP, Baud: lc.Baud, Parity: map[string]string{"E": "even", "O": "odd", "N": "none"}[lc.Parity]}
		var primaryOf func(foundMeter) (int, string)
		if mc != nil {
			primaryOf = mbusIdentity(ctx, mc)
		}
		res, err := appendMeters(*appendTo, sc.found, nb, primaryOf)
		if err != nil {
			return err
		}
		res.report(e.stdout, *appendTo)
	}
	return nil
}

// scanResult is what a scan of an address range saw.
type scanResult struct {
	found []foundMeter // meters that answered
	noted []foundMeter // addresses with a bad answer that stayed bad: table rows, not meters
	stop  error        // why the scan ended before its range did
}

// scanAddresses probes from..to, each address once more after a bad
// answer (timeout, CRC error, garbled or colliding answers), and goes on
// whatever one address does. Only a line error or ctx ends it early.
func scanAddresses(ctx context.Context, from, to int, probe func(int) (bool, error), progress func(done, found int)) scanResult {
	var r scanResult
	total := to - from + 1
	for a := from; a <= to; a++ {
		if ctx.Err() != nil {
			r.stop = interrupted(a-from, total, len(r.found))
			return r
		}
		ok, err := probe(a)
		note := ""
		if !ok && (err == nil || !lineError(err)) && ctx.Err() == nil {
			first := "no answer"
			if err != nil {
				first = err.Error()
			}
			ok2, err2 := probe(a)
			switch {
			case ok2:
				ok, err, note = true, nil, "answered on the second try (first: "+first+")"
			case err2 != nil && !lineError(err2):
				err, note = nil, "no clean answer in two tries: "+err2.Error()
				if errors.Is(err2, dmbus.ErrCollision) {
					note = "several meters answer this address"
				}
			case err2 == nil && err != nil:
				err, note = nil, "no answer on the second try (first: "+first+")"
			default:
				err = err2
			}
		}
		if ctx.Err() != nil {
			r.stop = interrupted(a-from, total, len(r.found))
			return r
		}
		if err != nil {
			r.stop = fmt.Errorf("the scan did not cover its range: stopped at address %d (%d of %d addresses probed): %w; nothing written", a, a-from, total, err)
			return r
		}
		switch {
		case ok:
			r.found = append(r.found, foundMeter{Address: a, Note: note})
		case note != "":
			r.noted = append(r.noted, foundMeter{Address: a, Note: note})
		}
		if progress != nil {
			progress(a-from+1, len(r.found))
		}
	}
	return r
}

func interrupted(done, total, found int) error {
	return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted after %d of %d addresses (%d meters found; nothing written)", done, total, found)}
}

// lineError tells the line's own failure (device gone, converter closed,
// port taken), which ends a scan, from a meter's bad answer, which does not.
func lineError(err error) bool {
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, os.ErrClosed, net.ErrClosed, link.ErrPortBusy,
		syscall.EIO, syscall.ENXIO, syscall.EBADF, syscall.ECONNRESET, syscall.EPIPE, syscall.ENODEV} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// mbusIdentity reads a found M-Bus meter once to learn the address form
// the scan did not give: the primary address of one found by secondary
// address, the identification number of one found by primary address. It
// returns -1 or "" where the meter does not tell.
func mbusIdentity(ctx context.Context, c *dmbus.Client) func(foundMeter) (int, string) {
	return func(f foundMeter) (int, string) {
		var ts []dmbus.Telegram
		var err error
		if f.Secondary != "" {
			id, perr := strconv.ParseUint(f.Secondary[:8], 10, 32)
			if perr != nil {
				return -1, ""
			}
			ts, err = c.ReadSecondary(ctx, dmbus.Secondary{ID: uint32(id), Manufacturer: 0xFFFF, Version: 0xFF, Medium: 0xFF})
		} else {
			ts, err = c.ReadPrimary(ctx, byte(f.Address))
		}
		if err != nil || len(ts) == 0 {
			return -1, ""
		}
		app, _ := pmbus.ParseApplication(ts[0].CI, ts[0].Data)
		return int(ts[0].Address), app.Header.ID
	}
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
