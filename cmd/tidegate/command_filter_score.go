package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"tidegate/filter"
	"tidegate/filter/score"
	"tidegate/reading"
)

const truthHeader = "time,meter,real_use_m3,real_backflow_m3,phantom_fwd_m3,phantom_rev_m3,leak,surge"

// runFilterScore filters a samples CSV from stdin and scores the result, and
// the naive forward − reverse baseline, against metersim's truth.csv.
func runFilterScore(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("filter score", e)
	cfgPath := fs.String("config", "", "tidegate config file whose filter: section tunes the filter")
	truthPath := fs.String("truth", "", "metersim truth.csv of the same run (required)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if *truthPath == "" {
		return usageErrorf("--truth FILE is required")
	}
	cfg, err := filterConfig(*cfgPath)
	if err != nil {
		return err
	}
	tf, err := os.Open(*truthPath)
	if err != nil {
		return usageError(err)
	}
	defer tf.Close()
	fsc, nsc := score.New(cfg.Location), score.New(cfg.Location)
	if err := readTruth(tf, func(meter string, t time.Time, tr score.Truth) {
		fsc.AddTruth(meter, t, tr)
		nsc.AddTruth(meter, t, tr)
	}); err != nil {
		return usageError(fmt.Errorf("%s: %w", *truthPath, err))
	}
	f := filter.New(cfg)
	var out filter.Output
	type last struct{ f, r, res float64 }
	prev := map[string]*last{}
	collect := func() {
		for _, r := range out.Readings {
			fsc.AddOutput(r.Meter, r.Received, *r.Filter)
		}
		out.Reset()
	}
	err = readSamples(ctx, e.stdin, func(r readingRow) error {
		p := prev[r.Meter]
		if p == nil {
			prev[r.Meter] = &last{r.Forward, r.Reverse, 1}
		} else {
			df, dr := r.Forward-p.f, r.Reverse-p.r
			for _, d := range []float64{df, dr} {
				if d > 1e-7 && d < p.res {
					p.res = d // the totaliser step, for the scorer's tolerance
				}
			}
			nsc.AddOutput(r.Meter, r.Received, reading.Filtered{Consumption: df - dr})
			p.f, p.r = r.Forward, r.Reverse
		}
		f.PushTo(&out, r.Reading)
		collect()
		return nil
	})
	if err != nil {
		return err
	}
	out = f.End()
	collect()
	for id, p := range prev {
		fsc.Resolution(id, p.res)
		nsc.Resolution(id, p.res)
	}
	fsc.Result().Write(e.stdout, "filter")
	nsc.Result().Write(e.stdout, "naive forward-reverse")
	return nil
}

// readTruth reads metersim's truth.csv.
func readTruth(in io.Reader, fn func(string, time.Time, score.Truth)) error {
	sc := bufio.NewScanner(in)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimRight(sc.Bytes(), "\r")
		if line == 1 {
			if string(b) != truthHeader {
				return fmt.Errorf("line 1: header %q, want %q", b, truthHeader)
			}
			continue
		}
		f := bytes.Split(b, []byte(","))
		if len(f) != 8 {
			return fmt.Errorf("line %d: want 8 fields", line)
		}
		t, err := time.Parse(time.RFC3339, string(f[0]))
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		var v [4]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(string(f[2+i]), 64); err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
		}
		leak, err := strconv.ParseBool(string(f[6]))
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		fn(string(f[1]), t, score.Truth{RealUse: v[0], RealBackflow: v[1], Phantom: v[2], Leak: leak})
	}
	if err := sc.Err(); err != nil {
		return errors.Join(errors.New("reading truth"), err)
	}
	return nil
}
