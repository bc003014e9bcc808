package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"tidegate/reading"
)

// runTail follows readings and events from the running daemon until Ctrl-C.
func runTail(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("tail", e)
	socket := socketFlags(fs)
	meter := fs.String("meter", "", "only this meter (id)")
	asJSON := fs.Bool("json", false, "print JSON lines as the daemon sends them")
	count := fs.Int("n", 0, "stop after this many records (0 = follow until interrupted)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	path := "/v1/tail"
	if *meter != "" {
		path += "?meter=" + url.QueryEscape(*meter)
	}
	resp, err := newAPIClient(socket()).do(ctx, "GET", path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		if *asJSON {
			fmt.Fprintln(e.stdout, sc.Text())
		} else {
			var j reading.RecordJSON
			if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
				return fmt.Errorf("daemon sent a line that is not a record: %w", err)
			}
			writeRecordLine(e.stdout, j)
		}
		n++
		if *count > 0 && n >= *count {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted by the technician: not a failure
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("the daemon closed the stream (stopped or restarted)")
}

// writeRecordLine prints one record (the one JSON encoding the daemon
// streams, as the uplink sends it) as a technician reads it: meter, totals,
// what the filter made of them, flags.
func writeRecordLine(w io.Writer, j reading.RecordJSON) {
	var b strings.Builder
	at := j.GatewayTime
	if at == nil {
		at = j.Time
	}
	when := "--:--:--"
	if at != nil {
		when = at.Local().Format("15:04:05")
	}
	fmt.Fprintf(&b, "%s  %-8s %-12s", when, j.Kind, j.Meter)
	num := func(label string, v *float64, unit string) {
		if v != nil {
			fmt.Fprintf(&b, " %s %.4f%s", label, *v, unit)
		}
	}
	var flags []string
	switch j.Kind {
	case "event":
		fmt.Fprintf(&b, " %s", j.Type)
		if j.Message != "" {
			fmt.Fprintf(&b, ": %s", j.Message)
		}
	case "summary":
		if s := j.Summary; s != nil {
			fmt.Fprintf(&b, " day %s", s.Day)
			num("use", &s.Consumption, " m3")
			num("phantom", &s.Phantom, " m3")
			num("backflow", &s.Backflow, " m3")
			flags = s.Flags
		}
	default:
		num("fwd", j.Forward, "")
		num("rev", j.Reverse, "")
		num("flow", j.Flow, " m3/h")
		if f := j.Filter; f != nil {
			num("use", &f.Consumption, " m3")
			num("phantom", &f.Phantom, " m3")
			flags = f.Flags
		}
		if j.Quality != "" && j.Quality != "good" {
			fmt.Fprintf(&b, " [%s: %s]", j.Quality, j.Error)
		}
	}
	if fl := append(append([]string{}, j.Status...), flags...); len(fl) > 0 {
		fmt.Fprintf(&b, " {%s}", strings.Join(fl, ","))
	}
	fmt.Fprintln(w, b.String())
}
