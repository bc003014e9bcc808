package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"tidegate/cmd/tidegate/internal/daemon"
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
	rawCount  int
}

func (s *standaloneRead) flags(fs *flag.FlagSet) {
	s.line.register(fs)
	fs.IntVar(&s.address, "address", 1, "Modbus unit id or M-Bus primary address")
	fs.StringVar(&s.secondary, "secondary", "", "M-Bus secondary address instead of --address")
	fs.StringVar(&s.profile, "profile", "", "Modbus profile (register map) name or file")
	fs.IntVar(&s.function, "function", 3, "--raw: Modbus function, 3 (holding) or 4 (input registers)")
	fs.BoolFunc("raw", "Modbus: read START COUNT registers (the two arguments) and show them decoded in every type and word order", func(string) error {
		s.rawCount = -1
		return nil
	})
}

func (s *standaloneRead) run(ctx context.Context, e *env, args []string, asJSON bool) error {
	lc := s.line.link()
	timeout := s.line.timeout
	if timeout == 0 {
		timeout = time.Second
	}
	switch s.line.protocol {
	case "mbus":
		c, err := dmbus.Open(lc, dmbus.Options{Timeout: s.line.timeout})
		if err != nil {
			return err
		}
		defer c.Close()
		r, err := c.Poll(ctx, dmbus.Meter{ID: "meter", Address: byte(s.address), Secondary: s.secondary}, true)
		if err != nil {
			return err
		}
		return printReading(e.stdout, daemon.FromReading("reading", &r), asJSON)
	case "modbus", "modbus-tcp":
	default:
		return usageErrorf("--protocol %q: want modbus, modbus-tcp or mbus", s.line.protocol)
	}
	if s.address < 1 || s.address > 247 {
		return usageErrorf("--address %d is out of range 1..247 for modbus", s.address)
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
		return printRaw(e, uint16(start), regs)
	}
	if s.profile == "" {
		return usageErrorf("a Modbus read needs --profile (or --raw START COUNT for an unknown meter)")
	}
	p, err := findProfile(s.profile)
	if err != nil {
		return err
	}
	r, err := c.Poll(ctx, dmodbus.Meter{ID: "meter", Address: byte(s.address), Profile: p}, true)
	if err != nil {
		return err
	}
	return printReading(e.stdout, daemon.FromReading("reading", &r), asJSON)
}

// printRaw shows registers decoded in every type and word order side by
// side, so a technician facing an unknown meter can spot the plausible one.
func printRaw(e *env, start uint16, regs []uint16) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "addr\thex\tuint16\tint16\t")
	for _, t := range []pmodbus.Type{pmodbus.Uint32, pmodbus.Int32, pmodbus.Float32} {
		for _, o := range pmodbus.Orders() {
			fmt.Fprintf(tw, "%v %v\t", t, o)
		}
	}
	fmt.Fprint(tw, "float64 ABCD\tfloat64 CDAB\t\n")
	for i := range regs {
		fmt.Fprintf(tw, "%d\t%04X\t%d\t%d\t", int(start)+i, regs[i], regs[i], int16(regs[i]))
		for _, t := range []pmodbus.Type{pmodbus.Uint32, pmodbus.Int32, pmodbus.Float32} {
			for _, o := range pmodbus.Orders() {
				fmt.Fprintf(tw, "%s\t", rawCell(regs[i:], t, o))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", rawCell(regs[i:], pmodbus.Float64, pmodbus.ABCD), rawCell(regs[i:], pmodbus.Float64, pmodbus.CDAB))
	}
	return tw.Flush()
}

func rawCell(regs []uint16, t pmodbus.Type, o pmodbus.WordOrder) string {
	v, err := pmodbus.Decode(regs, t, o)
	if err != nil {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 8, 64)
}
