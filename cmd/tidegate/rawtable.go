package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	pmodbus "tidegate/protocol/modbus"
)

// rawWidth is the widest line `read --raw` prints: a laptop terminal on a
// ladder, or a phone's SSH client, is about this wide.
const rawWidth = 100

// decoding is one way to read the registers starting at an address.
type decoding struct {
	t pmodbus.Type
	o pmodbus.WordOrder
}

func (d decoding) String() string {
	if d.t.Registers() == 1 {
		return d.t.String()
	}
	return d.t.String() + " " + d.o.String()
}

// rawDecodings is what `read --raw` tries, or with --as TYPE[:ORDER] the
// one type in every word order (or the one order).
func rawDecodings(as string) ([]decoding, error) {
	if as == "" {
		ds := []decoding{{pmodbus.Uint16, pmodbus.ABCD}, {pmodbus.Int16, pmodbus.ABCD}}
		for _, t := range []pmodbus.Type{pmodbus.Uint32, pmodbus.Int32, pmodbus.Float32} {
			for _, o := range pmodbus.Orders() {
				ds = append(ds, decoding{t, o})
			}
		}
		return append(ds, decoding{pmodbus.Float64, pmodbus.ABCD}, decoding{pmodbus.Float64, pmodbus.CDAB}), nil
	}
	ts, os, _ := strings.Cut(as, ":")
	t, err := pmodbus.ParseType(ts)
	if err != nil {
		return nil, usageErrorf("--as %q: %v", as, err)
	}
	orders := pmodbus.Orders()
	if t.Registers() == 1 {
		orders = orders[:1]
	}
	if os != "" {
		o, err := pmodbus.ParseWordOrder(os)
		if err != nil {
			return nil, usageErrorf("--as %q: %v", as, err)
		}
		orders = []pmodbus.WordOrder{o}
	}
	var ds []decoding
	for _, o := range orders {
		ds = append(ds, decoding{t, o})
	}
	return ds, nil
}

// rawValue decodes regs as d; ok is false when too few registers are left.
func rawValue(regs []uint16, d decoding) (float64, bool) {
	v, err := pmodbus.Decode(regs, d.t, d.o)
	return v, err == nil
}

// rawCell prints integers as integers and floats in at most 12 characters.
func rawCell(regs []uint16, d decoding) string {
	v, ok := rawValue(regs, d)
	if !ok {
		return "-"
	}
	switch d.t {
	case pmodbus.Float32, pmodbus.Float64:
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// printRaw shows registers decoded as every type and word order, so a
// technician facing an unknown meter can spot the value on its display.
// Without --as, a row is one decoding and the addresses run across, in
// blocks that fit rawWidth; with --as, a row is one address.
func printRaw(w io.Writer, start uint16, regs []uint16, as string, asJSON bool) error {
	ds, err := rawDecodings(as)
	if err != nil {
		return err
	}
	if asJSON {
		type reg struct {
			Address int                `json:"address"`
			Hex     string             `json:"hex"`
			Values  map[string]float64 `json:"values"`
		}
		out := make([]reg, len(regs))
		for i := range regs {
			out[i] = reg{Address: int(start) + i, Hex: fmt.Sprintf("%04X", regs[i]), Values: map[string]float64{}}
			for _, d := range ds {
				if v, ok := rawValue(regs[i:], d); ok {
					out[i].Values[d.String()] = v
				}
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if as != "" {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "addr\thex\t")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t", d)
		}
		fmt.Fprintln(tw)
		for i := range regs {
			fmt.Fprintf(tw, "%d\t%04X\t", int(start)+i, regs[i])
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t", rawCell(regs[i:], d))
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
	// label column 12 wide, cells 12 wide, 2 apart: 6 addresses a block.
	const perBlock = (rawWidth - 12) / 14
	for b := 0; b < len(regs); b += perBlock {
		end := min(b+perBlock, len(regs))
		tw := tabwriter.NewWriter(w, 12, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "register\t")
		for i := b; i < end; i++ {
			fmt.Fprintf(tw, "%d\t", int(start)+i)
		}
		fmt.Fprint(tw, "\nhex\t")
		for i := b; i < end; i++ {
			fmt.Fprintf(tw, "%04X\t", regs[i])
		}
		fmt.Fprintln(tw)
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t", d)
			for i := b; i < end; i++ {
				fmt.Fprintf(tw, "%s\t", rawCell(regs[i:], d))
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if end < len(regs) {
			fmt.Fprintln(w)
		}
	}
	return nil
}
