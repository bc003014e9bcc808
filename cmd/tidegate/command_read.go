package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"tidegate/reading"
)

// runRead reads one meter now: through the running daemon (tidegate read
// METER), or stand-alone on a bus the daemon does not hold (--port ...).
func runRead(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("read", e)
	socket := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print the record as one JSON line, as the uplink sends it (--raw: the registers)")
	var so standaloneRead
	so.flags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	if so.line.port != "" {
		if len(pos) != 0 && so.rawCount == 0 {
			// --raw takes START COUNT as the two arguments after it.
			return usageErrorf("stand-alone read takes no METER argument")
		}
		if so.as != "" && so.rawCount == 0 {
			return usageErrorf("--as goes with --raw START COUNT")
		}
		return so.run(ctx, e, pos, *asJSON)
	}
	if len(pos) != 1 {
		return usageErrorf("expected one METER id (or --port, --address and --profile for a stand-alone read)")
	}
	var j reading.RecordJSON
	if err := newAPIClient(socket()).getJSON(ctx, "POST", "/v1/read?meter="+url.QueryEscape(pos[0]), &j); err != nil {
		return err
	}
	return printReading(e.stdout, j, *asJSON)
}

// liveRecord is a reading read stand-alone in the record's one encoding, as
// the daemon's /v1/read answers: never stored, so without seq and id.
func liveRecord(r *reading.Reading) reading.RecordJSON {
	return reading.ToJSON("", reading.Record{Kind: reading.KindReading, Reading: r})
}

// printReading shows one record: with --json as one line in the record's
// one encoding (what the uplink sends, `tail --json` prints and `buffer
// export` writes), else as a table rendered from that same value, so the
// two never disagree on a value or its rounding.
func printReading(w io.Writer, j reading.RecordJSON, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(j)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	num := func(k string, v *float64, unit string) {
		if v != nil {
			row(k, fmt.Sprintf("%.4f %s", *v, unit))
		}
	}
	when := func(k string, t *time.Time) {
		if t != nil {
			row(k, t.Local().Format("2006-01-02 15:04:05"))
		}
	}
	row("meter", j.Meter)
	when("time", j.GatewayTime)
	when("meter time", j.MeterTime)
	row("quality", j.Quality)
	if j.Error != "" {
		row("error", j.Error)
	}
	num("forward", j.Forward, "m3")
	num("reverse", j.Reverse, "m3")
	num("net", j.Net, "m3")
	num("flow", j.Flow, "m3/h")
	num("temperature", j.Temperature, "°C")
	if j.BatteryMV != nil {
		row("battery", fmt.Sprintf("%d mV", *j.BatteryMV))
	}
	if len(j.Status) > 0 {
		row("status", strings.Join(j.Status, ", "))
	}
	return tw.Flush()
}
