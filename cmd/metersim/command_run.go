package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/simulator"
)

// runSimulator is `metersim --config FILE [--ports FILE] [--speed N] [--seed N]`:
// it opens every bus, prints where each can be reached, and answers until
// interrupted.
func runSimulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("metersim", flag.ContinueOnError)
	cfgPath := fs.String("config", "configs/sim/demo.yaml", "simulator configuration")
	ports := fs.String("ports", "", "write each bus's device path and TCP address as JSON to this file")
	speed := fs.Float64("speed", 0, "simulation seconds per real second (overrides the config)")
	seed := fs.Int64("seed", 0, "random seed (overrides the config)")
	verbose := fs.Bool("v", false, "log every fault and collision")
	startAt := fs.String("start", "", "simulation start, RFC 3339 (overrides the config)")
	if code, done := parseFlags(fs, args, "metersim [--config FILE] [--ports FILE] [--speed N] [--seed N] [--start TIME] [-v]\n"+
		"       metersim samples --out DIR [--days N] [--meters N] [--seed N] [--interval D|mixed] [--start TIME]   (metersim samples --help)", stdout, stderr); done {
		return code
	}
	cfg, err := simulator.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "metersim: %v\n", err)
		return 2
	}
	if *speed > 0 {
		cfg.Speed = *speed
	}
	if *seed != 0 {
		cfg.Seed = *seed
	}
	if *startAt != "" {
		if cfg.Start, err = time.Parse(time.RFC3339, *startAt); err != nil {
			fmt.Fprintf(stderr, "metersim: --start: %v\n", err)
			return 2
		}
	}
	log := logrus.New()
	log.SetOutput(stderr)
	if *verbose {
		log.SetLevel(logrus.DebugLevel)
	}
	sim, err := simulator.Start(ctx, cfg, logrus.NewEntry(log))
	if err != nil {
		fmt.Fprintf(stderr, "metersim: %v\n", err)
		return 1
	}
	defer sim.Close()
	info := sim.Ports()
	names := make([]string, 0, len(info))
	for n := range info {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := info[n]
		fmt.Fprintf(stdout, "bus %s: %s %d 8%s1 device=%s tcp=%s meters=%d\n", n, p.Protocol, p.Baud, p.Parity, orDash(p.Device), orDash(p.TCP), len(p.Meters))
	}
	if *ports != "" {
		data, _ := json.MarshalIndent(info, "", "  ")
		tmp := *ports + ".tmp"
		err := os.WriteFile(tmp, append(data, '\n'), 0o644)
		if err == nil {
			err = os.Rename(tmp, *ports)
		}
		if err != nil {
			fmt.Fprintf(stderr, "metersim: writing %s: %v\n", *ports, err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "simulating from %s at %gx; Ctrl-C to stop\n", sim.Now().Format(time.RFC3339), cfg.Speed)
	<-ctx.Done()
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
