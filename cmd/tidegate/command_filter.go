package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/filter"
	"tidegate/reading"
)

// runFilter runs the self-rotation filter over a samples CSV:
// `tidegate filter [--config F] < samples.csv > out.csv`, and scores it
// against simulator ground truth: `tidegate filter score --truth T < samples.csv`.
func runFilter(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "score" {
		return runFilterScore(ctx, e, args[1:])
	}
	fs := newFlagSet("filter", e)
	cfgPath := fs.String("config", "", "tidegate config file whose filter: section tunes the filter")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (input is read from stdin)", fs.Arg(0))
	}
	cfg, err := filterConfig(*cfgPath)
	if err != nil {
		return err
	}
	f := filter.New(cfg)
	w := bufio.NewWriterSize(e.stdout, 1<<16)
	w.WriteString(filteredHeader + "\n")
	var out filter.Output
	var buf []byte
	emit := func() error {
		for _, r := range out.Readings {
			buf = appendFiltered(buf[:0], r)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		out.Reset()
		return nil
	}
	rerr := readSamples(ctx, e.stdin, func(r readingRow) error {
		f.PushTo(&out, r.Reading)
		return emit()
	})
	// Whatever was read before a bad row is still written: lose nothing.
	out = f.End()
	if err := emit(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return rerr
}

// filterConfig maps the daemon config's filter: section.
func filterConfig(path string) (filter.Config, error) {
	var cfg filter.Config
	if path == "" {
		return cfg, nil
	}
	c, err := config.Load(path, os.Getenv)
	if err != nil {
		return cfg, usageError(err)
	}
	cfg = c.FilterConfig()
	if err := cfg.Validate(); err != nil {
		return cfg, usageError(fmt.Errorf("%s: %w", path, err))
	}
	return cfg, nil
}

type readingRow struct {
	reading.Reading
	line int
}

// readSamples reads a samples CSV, calling fn for each row. A bad row stops
// the read with an error naming its line (exit 2).
func readSamples(ctx context.Context, in io.Reader, fn func(readingRow) error) error {
	br := bufio.NewReaderSize(in, 1<<16)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return usageErrorf("line %d: longer than %d bytes", line, br.Size())
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(b) == 0 && errors.Is(err, io.EOF) {
			if line == 1 {
				return usageErrorf("line 1: empty input, want the header %q", samplesHeader)
			}
			return nil
		}
		b = bytes.TrimRight(b, "\r\n")
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
			if string(b) != samplesHeader {
				return usageErrorf("line 1: header %q, want %q", b, samplesHeader)
			}
		} else if len(b) > 0 {
			if line%8192 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			r, perr := parseSampleRow(b)
			if perr != nil {
				return usageErrorf("line %d: %w", line, perr)
			}
			if ferr := fn(readingRow{Reading: r, line: line}); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}
