package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"tidegate/cmd/tidegate/internal/daemon"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("status", e)
	socket := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print the daemon's status as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	var s daemon.Status
	if err := newAPIClient(socket()).getJSON(ctx, "GET", "/v1/status", &s); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	writeStatus(e.stdout, s, paint(isTTY(e.stdout)), time.Now())
	return nil
}

// isTTY is true when w is a terminal: only then are colours written.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// paint returns a colouring function that is the identity off a terminal.
func paint(on bool) func(word string) string {
	return func(word string) string {
		if !on {
			return word
		}
		code := ""
		switch word {
		case "online", "running", "connected", "good":
			code = "32"
		case "waiting", "reopening", "stale", "not wired", "disabled":
			code = "33"
		case "offline", "error", "disconnected", "stopped":
			code = "31"
		}
		if code == "" {
			return word
		}
		return "\x1b[" + code + "m" + word + "\x1b[0m"
	}
}

func writeStatus(w io.Writer, s daemon.Status, c func(string) string, now time.Time) {
	fmt.Fprintf(w, "tidegate %s  version %s  up %s  config %s  stages: %s\n", s.Gateway, s.Version,
		(time.Duration(s.UptimeS) * time.Second).String(), s.ConfigHash, strings.Join(s.Stages, " → "))
	for _, x := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
	if s.LastReload != "" {
		fmt.Fprintf(w, "last reload: %s\n", s.LastReload)
	}
	broker := "not wired"
	if s.Broker.Wired {
		broker = "disconnected"
		if s.Broker.Connected {
			broker = "connected"
		}
	}
	fmt.Fprintf(w, "broker  %s  %s  published %d  acked %d", s.Broker.URL, c(broker), s.Broker.Published, s.Broker.Acked)
	if s.Broker.Error != "" {
		fmt.Fprintf(w, "  (%s)", s.Broker.Error)
	}
	fmt.Fprintln(w)
	if s.Buffer.Wired {
		fmt.Fprintf(w, "buffer  depth %d  oldest %s  %s  evicted %d\n", s.Buffer.Depth,
			(time.Duration(s.Buffer.OldestAgeS) * time.Second).String(), humanBytes(s.Buffer.Bytes), s.Buffer.Evicted)
	} else {
		fmt.Fprintf(w, "buffer  %s\n", c("not wired"))
	}
	fmt.Fprintln(w)
	// The tables are aligned without colour, then coloured word by word, so
	// escape codes never upset the column widths.
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUS\tPROTOCOL\tPORT\tSTATE\tREQUESTS\tTIMEOUTS\tCRC\tERRORS\tEFFICIENCY\t")
	for _, b := range s.Buses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.0f%%\t%s\n", b.Name, b.Protocol, b.Port, b.State, b.Requests, b.Timeouts, b.CRCErrors, b.Errors, 100*b.Efficiency, b.Error)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "METER\tBUS\tSTATE\tLAST\tFORWARD m3\tFLOW m3/h\tQUALITY\tFLAGS\t\t")
	for _, m := range s.Meters {
		last, fwd, flow, q, flags := "-", "-", "-", "-", ""
		if l := m.Last; l != nil {
			if l.GatewayTime != nil {
				last = now.Sub(*l.GatewayTime).Round(time.Second).String() + " ago"
			}
			if l.Forward != nil {
				fwd = fmt.Sprintf("%.3f", *l.Forward)
			}
			if l.Flow != nil {
				flow = fmt.Sprintf("%.3f", *l.Flow)
			}
			q = l.Quality
			fl := append([]string{}, l.Status...)
			if l.Filter != nil {
				fl = append(fl, l.Filter.Flags...)
			}
			flags = strings.Join(fl, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t\n", m.ID, m.Bus, m.State, last, fwd, flow, q, flags)
	}
	tw.Flush()
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		fields := strings.SplitAfter(line, " ")
		for i, f := range fields {
			word := strings.TrimRight(f, " \n")
			fields[i] = strings.Replace(f, word, c(word), 1)
		}
		fmt.Fprint(w, strings.Join(fields, ""))
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
