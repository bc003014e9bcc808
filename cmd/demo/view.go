package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// view prints what a subscriber of the gateway's topics sees: meter,
// consumption, phantom removed, flags.
type view struct {
	mu       sync.Mutex
	w        io.Writer
	messages int
	records  int
	phantom  map[string]float64
	use      map[string]float64
	flags    map[string]map[string]bool
	header   bool
}

func newView(w io.Writer) *view {
	return &view{w: w, phantom: map[string]float64{}, use: map[string]float64{}, flags: map[string]map[string]bool{}}
}

func (v *view) onMessage(topic string, payload []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.messages++
	kind := topic[strings.LastIndexByte(topic, '/')+1:]
	var doc any
	if json.Unmarshal(payload, &doc) != nil {
		fmt.Fprintf(v.w, "%s  %-8s %s\n", time.Now().Format("15:04:05"), kind, truncate(string(payload), 100))
		return
	}
	recs := records(doc)
	if len(recs) == 0 {
		line := string(payload)
		if m, ok := doc.(map[string]any); ok && kind == "status" {
			line = statusLine(m)
		}
		fmt.Fprintf(v.w, "%s  %-8s %s\n", time.Now().Format("15:04:05"), kind, truncate(line, 100))
		return
	}
	if !v.header {
		v.header = true
		fmt.Fprintf(v.w, "%-8s  %-8s %-8s %10s %8s %8s  %s\n", "TIME", "TOPIC", "METER", "FORWARD", "USE", "PHANTOM", "NOTE")
	}
	for _, r := range recs {
		v.records++
		meter := str(r, "meter", "meter_id", "id")
		flags := strs(r, "flags")
		for _, s := range strs(r, "status") {
			flags = append(flags, "meter:"+s) // the meter's own alarm, not the filter's verdict
		}
		note := strings.Join(flags, " ")
		if ev := str(r, "type", "event"); ev != "" && kind == "events" {
			flags = append(flags, ev)
			note = strings.TrimSuffix(ev+": "+str(r, "message"), ": ")
		} else if e := str(r, "error"); e != "" {
			note = strings.TrimPrefix(str(r, "quality")+": "+e, ": ")
		}
		use, hasUse := num(r, "consumption_m3")
		ph, hasPh := num(r, "phantom_m3")
		fwd, hasFwd := num(r, "forward_m3")
		v.use[meter] += use
		v.phantom[meter] += ph
		if v.flags[meter] == nil {
			v.flags[meter] = map[string]bool{}
		}
		for _, f := range flags {
			v.flags[meter][f] = true
		}
		fmt.Fprintf(v.w, "%-8s  %-8s %-8s %10s %8s %8s  %s\n", time.Now().Format("15:04:05"), kind, meter,
			opt(fwd, hasFwd), opt(use, hasUse), opt(ph, hasPh), strings.ReplaceAll(note, "meter "+meter+": ", ""))
	}
}

func (v *view) summary() {
	v.mu.Lock()
	defer v.mu.Unlock()
	fmt.Fprintf(v.w, "\nsubscriber saw %d messages, %d records\n", v.messages, v.records)
	var meters []string
	for m := range v.use {
		meters = append(meters, m)
	}
	sort.Strings(meters)
	for _, m := range meters {
		var fl []string
		for f := range v.flags[m] {
			fl = append(fl, f)
		}
		sort.Strings(fl)
		fmt.Fprintf(v.w, "  %-8s use %7.3f m3  phantom removed %7.3f m3  %s\n", m, v.use[m], v.phantom[m], strings.Join(fl, " "))
	}
}

// tailFallback shows the daemon's own stream when nothing reaches the broker
// (a build without the uplink stage), so the demo still shows the readings.
func (v *view) tailFallback(ctx context.Context, tidegate, socket string) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(6 * time.Second):
	}
	v.mu.Lock()
	got := v.messages
	v.mu.Unlock()
	if got > 0 {
		return
	}
	fmt.Fprintln(v.w, "(nothing on the broker yet: showing the daemon's own stream, 'tidegate tail')")
	cmd := exec.CommandContext(ctx, tidegate, "tail", "--socket", socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return
	}
	cmd.Stderr = cmd.Stdout
	if cmd.Start() != nil {
		return
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		v.mu.Lock()
		fmt.Fprintln(v.w, "tail  "+sc.Text())
		v.mu.Unlock()
	}
	_ = cmd.Wait()
}

// records finds the reading-like objects in a payload, whatever its batch
// envelope: a list, an object with a list under any key, or one object.
func records(doc any) []map[string]any {
	switch d := doc.(type) {
	case []any:
		var out []map[string]any
		for _, e := range d {
			if m, ok := e.(map[string]any); ok {
				out = append(out, flatten(m))
			}
		}
		return out
	case map[string]any:
		for _, k := range []string{"readings", "records", "events", "items", "batch"} {
			if l, ok := d[k].([]any); ok {
				return records(l)
			}
		}
		if _, ok := d["meter"]; ok {
			return []map[string]any{flatten(d)}
		}
	}
	return nil
}

// flatten lifts one level of nested objects (e.g. "filter": {...}) so field
// lookup does not depend on the exact schema.
func flatten(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			for sk, sv := range sub {
				if _, exists := out[sk]; !exists {
					out[sk] = sv
				}
			}
			continue
		}
		out[k] = v
	}
	for k, v := range m {
		if _, ok := v.(map[string]any); !ok {
			out[k] = v
		}
	}
	return out
}

func str(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok {
			return s
		}
	}
	return ""
}

func strs(m map[string]any, key string) []string {
	var out []string
	switch v := m[key].(type) {
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	case string:
		if v != "" {
			out = strings.Split(v, "|")
		}
	}
	return out
}

func num(m map[string]any, key string) (float64, bool) {
	f, ok := m[key].(float64)
	return f, ok
}

func opt(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// statusLine is the gateway's status message in a line: state, version,
// config and whatever else it says, without the JSON.
func statusLine(m map[string]any) string {
	parts := []string{str(m, "gateway") + " " + str(m, "state")}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "gateway", "state", "time":
			continue
		}
		switch x := m[k].(type) {
		case string:
			parts = append(parts, k+" "+x)
		case float64:
			// 'f', not %g: a seq (last_seq, seq_base) is a 16-digit integer.
			parts = append(parts, k+" "+strconv.FormatFloat(x, 'f', -1, 64))
		case []any:
			parts = append(parts, fmt.Sprintf("%s %d", k, len(x)))
		}
	}
	return strings.Join(parts, ", ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
