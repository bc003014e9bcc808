package daemon

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
)

// serveMetrics writes the Prometheus text exposition format by hand: the
// official client would add megabytes to a binary that must fit small boxes.
func (d *Daemon) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	writeMetrics(bw, d.status(), d.hub, d.config().API.MetricsMeterValues)
	_ = bw.Flush()
}

// metricWriter emits HELP/TYPE once per family, then its samples.
type metricWriter struct {
	w    io.Writer
	seen map[string]bool
}

func (m *metricWriter) sample(name, typ, help string, value float64, labels ...string) {
	if !m.seen[name] {
		m.seen[name] = true
		fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	fmt.Fprintf(m.w, "%s%s %s\n", name, labelSet(labels), formatValue(value))
}

func labelSet(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(escapeLabel(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatValue(v float64) string {
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%g", v)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeMetrics writes the gateway's health. A meter's totals are a
// household's use: they appear only with meterValues
// (api.metrics_meter_values), /metrics being readable by whoever reaches it.
func writeMetrics(w io.Writer, s Status, h *hub, meterValues bool) {
	m := &metricWriter{w: w, seen: map[string]bool{}}
	m.sample("tidegate_build_info", "gauge", "Build and config of the running daemon.", 1, "version", s.Version, "gateway", s.Gateway, "config_hash", s.ConfigHash)
	m.sample("tidegate_uptime_seconds", "gauge", "Seconds since the daemon started.", s.UptimeS)
	m.sample("tidegate_reloads_total", "counter", "SIGHUP reloads attempted.", float64(s.Reloads))
	m.sample("tidegate_goroutines", "gauge", "Goroutines of the daemon: flat while it runs, whatever its lines do.", float64(runtime.NumGoroutine()))
	for _, p := range s.Parts {
		m.sample("tidegate_part_up", "gauge", "1 when the supervised part runs; 0 while it restarts after an error.", b2f(p.State == "running"), "part", p.Name)
	}
	for _, p := range s.Parts {
		m.sample("tidegate_part_restarts_total", "counter", "Restarts of the supervised part after an error (for the pipeline: failed appends, retried).", float64(p.Restarts), "part", p.Name)
	}
	for _, b := range s.Buses {
		m.sample("tidegate_bus_up", "gauge", "1 when the bus is polling.", b2f(b.State == "running"), "bus", b.Name, "protocol", b.Protocol)
	}
	for _, f := range []struct {
		name, help string
		get        func(BusStatus) uint64
	}{
		{"tidegate_bus_requests_total", "Requests sent on the bus.", func(b BusStatus) uint64 { return b.Requests }},
		{"tidegate_bus_answers_total", "Valid answers received.", func(b BusStatus) uint64 { return b.Answers }},
		{"tidegate_bus_timeouts_total", "Requests that got no answer in time.", func(b BusStatus) uint64 { return b.Timeouts }},
		{"tidegate_bus_crc_errors_total", "Frames with a bad checksum.", func(b BusStatus) uint64 { return b.CRCErrors }},
		{"tidegate_bus_collisions_total", "Answers of several meters at once (an address used twice).", func(b BusStatus) uint64 { return b.Collisions }},
		{"tidegate_bus_errors_total", "Other failed requests.", func(b BusStatus) uint64 { return b.Errors }},
	} {
		for _, b := range s.Buses {
			m.sample(f.name, "counter", f.help, float64(f.get(b)), "bus", b.Name)
		}
	}
	for _, b := range s.Buses {
		m.sample("tidegate_bus_efficiency_ratio", "gauge", "Share of requests answered, 0..1.", b.Efficiency, "bus", b.Name)
	}
	for _, mt := range s.Meters {
		m.sample("tidegate_meter_online", "gauge", "1 when the meter answered its last poll.", b2f(mt.State == "online"), "meter", mt.ID, "bus", mt.Bus)
	}
	for _, mt := range s.Meters {
		if mt.Last != nil && mt.Last.GatewayTime != nil {
			m.sample("tidegate_meter_last_reading_timestamp_seconds", "gauge", "Gateway time of the meter's last reading.", float64(mt.Last.GatewayTime.UnixMilli())/1000, "meter", mt.ID)
		}
	}
	for _, mt := range s.Meters {
		if meterValues && mt.Last != nil && mt.Last.Forward != nil {
			m.sample("tidegate_meter_forward_m3", "gauge", "Last forward total registered by the meter.", *mt.Last.Forward, "meter", mt.ID)
		}
	}
	m.sample("tidegate_buffer_records", "gauge", "Records in the durable buffer not yet acknowledged.", float64(s.Buffer.Depth))
	m.sample("tidegate_buffer_oldest_age_seconds", "gauge", "Age of the oldest unacknowledged record.", s.Buffer.OldestAgeS)
	m.sample("tidegate_buffer_bytes", "gauge", "Size of the buffer file.", float64(s.Buffer.Bytes))
	m.sample("tidegate_buffer_evicted_total", "counter", "Records evicted because the buffer was full.", float64(s.Buffer.Evicted))
	m.sample("tidegate_broker_connected", "gauge", "1 while connected to the MQTT broker.", b2f(s.Broker.Connected))
	m.sample("tidegate_uplink_published_total", "counter", "Records published.", float64(s.Broker.Published))
	m.sample("tidegate_uplink_acked_total", "counter", "Records acknowledged to the buffer.", float64(s.Broker.Acked))
	m.sample("tidegate_uplink_app_acks_refused_total", "counter", "Application acks beyond what was published: refused, nothing deleted.", float64(s.Broker.AppAcksRefused))
	seen, dropped, followers := h.counts()
	m.sample("tidegate_records_total", "counter", "Records that passed the pipeline.", float64(seen))
	m.sample("tidegate_tail_dropped_total", "counter", "Records a slow tail follower missed.", float64(dropped))
	m.sample("tidegate_tail_followers", "gauge", "Connected tail followers.", float64(followers))
}
