package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"tidegate/simulator/samples"
)

// runSamples writes simulated polls and their ground truth without serial
// I/O: samples.csv (what the gateway would read), truth.csv (per meter and
// interval: real use, real backflow, phantom, leak on/off) and meters.jsonl
// (each meter's drawn configuration, to reproduce or inspect a case).
func runSamples(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("metersim samples", flag.ContinueOnError)
	days := fs.Int("days", 3, "simulated days")
	seed := fs.Int64("seed", 1, "random seed (same seed, same fleet and same water)")
	meters := fs.Int("meters", 20, "number of meters")
	interval := fs.String("interval", "mixed", "poll interval (e.g. 60s), or mixed for 10s..15m")
	startS := fs.String("start", samples.DefaultStart.Format(time.RFC3339), "simulation start, RFC 3339")
	out := fs.String("out", "", "output directory (created)")
	if code, done := parseFlags(fs, args, "metersim samples --out DIR [--days N] [--meters N] [--seed N] [--interval D|mixed] [--start TIME]\n"+
		"writes samples.csv (what a gateway reads), truth.csv (real use, backflow, phantom, leak per interval) and meters.jsonl", stdout, stderr); done {
		return code
	}
	o := samples.Options{Days: *days, Seed: *seed, Meters: *meters}
	var err error
	if o.Start, err = time.Parse(time.RFC3339, *startS); err != nil {
		fmt.Fprintf(stderr, "metersim samples: --start: %v\n", err)
		return 2
	}
	if *interval != "mixed" {
		if o.Interval, err = time.ParseDuration(*interval); err != nil || o.Interval < time.Second {
			fmt.Fprintf(stderr, "metersim samples: --interval %q: want a duration ≥ 1s or mixed\n", *interval)
			return 2
		}
	}
	switch {
	case *out == "":
		fmt.Fprintln(stderr, "metersim samples: --out DIR is required")
		return 2
	case o.Days < 1 || o.Meters < 1 || o.Meters > 100000:
		fmt.Fprintln(stderr, "metersim samples: --days and --meters must be ≥ 1")
		return 2
	}
	n, err := writeSamples(ctx, o, *out)
	if err != nil {
		fmt.Fprintf(stderr, "metersim samples: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d samples of %d meters over %d days in %s\n", n, o.Meters, o.Days, *out)
	return 0
}

func writeSamples(ctx context.Context, o samples.Options, dir string) (n int, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	specs := samples.Fleet(o)
	create := func(name string) (*os.File, *bufio.Writer, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		return f, bufio.NewWriterSize(f, 1<<16), nil
	}
	files := make([]*os.File, 0, 3)
	defer func() {
		for _, f := range files {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	mf, mw, err := create("meters.jsonl")
	if err != nil {
		return 0, err
	}
	files = append(files, mf)
	enc := json.NewEncoder(mw)
	for _, s := range specs {
		if err := enc.Encode(s); err != nil {
			return 0, err
		}
	}
	sf, sw, err := create("samples.csv")
	if err != nil {
		return 0, err
	}
	files = append(files, sf)
	tf, tw, err := create("truth.csv")
	if err != nil {
		return 0, err
	}
	files = append(files, tf)
	sw.WriteString(samples.SamplesHeader)
	tw.WriteString(samples.TruthHeader)
	var buf []byte
	err = samples.Run(ctx, o, specs, func(r samples.Row) error {
		n++
		buf = samples.AppendSample(buf[:0], r)
		if _, err := sw.Write(buf); err != nil {
			return err
		}
		buf = samples.AppendTruth(buf[:0], r)
		_, err := tw.Write(buf)
		return err
	})
	return n, errors.Join(err, mw.Flush(), sw.Flush(), tw.Flush())
}
