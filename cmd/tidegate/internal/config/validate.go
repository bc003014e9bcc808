package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	// ids end up in MQTT topics and file names: no wildcards, no slashes.
	idPattern        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	secondaryPattern = regexp.MustCompile(`^([0-9]{8}|[0-9A-Fa-f]{16})$`)
	billingPattern   = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	standardBauds    = []int{300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
)

// validate checks meaning after decoding; every problem is appended, none stops the walk.
func (c *Config) validate(ps *Problems, nodes map[string]*yaml.Node) {
	// at points a problem at the path's own node, or the nearest written
	// parent when the key was left out.
	at := func(path, format string, a ...any) {
		n := nodes[path]
		for p := path; n == nil && p != ""; {
			if i := strings.LastIndexAny(p, ".["); i > 0 {
				p = p[:i]
			} else {
				p = ""
			}
			n = nodes[p]
		}
		ps.at(n, path, format, a...)
	}
	written := func(path string) bool { _, ok := nodes[path]; return ok }

	if c.Gateway.ID == "" {
		at("gateway.id", "required: a unique id for this concentrator, e.g. gw-0001")
	} else if !idPattern.MatchString(c.Gateway.ID) {
		at("gateway.id", "%q is not a valid id; expected letters, digits, '-', '_' or '.' (no '/', '+', '#')", c.Gateway.ID)
	}
	if c.Gateway.Timezone != "" {
		if _, err := time.LoadLocation(c.Gateway.Timezone); err != nil {
			at("gateway.timezone", "%q is not a known time zone; expected an IANA name such as Europe/Berlin", c.Gateway.Timezone)
		}
	}
	oneOf(at, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(at, "log.format", c.Log.Format, "auto", "text", "json")
	if c.API.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.API.Metrics); err != nil {
			at("api.metrics", "%q is not host:port; expected e.g. 127.0.0.1:9475", c.API.Metrics)
		}
	}

	c.validateSecurity(at)

	buses := map[string]Bus{}
	for i, b := range c.Buses {
		p := fmt.Sprintf("buses[%d]", i)
		switch {
		case b.Name == "":
			at(p+".name", "required: a name meters refer to, e.g. rs485-1")
		case !idPattern.MatchString(b.Name):
			at(p+".name", "%q is not a valid name; expected letters, digits, '-', '_' or '.'", b.Name)
		default:
			if _, dup := buses[b.Name]; dup {
				at(p+".name", "bus %q is defined twice", b.Name)
			} else {
				buses[b.Name] = b
			}
		}
		oneOf(at, p+".protocol", b.Protocol, ProtoModbus, ProtoMBus, ProtoModbusTCP, ProtoCJT188)
		checkCJTBus(b, p, at, written)
		switch {
		case b.Device == "" && b.TCP == "":
			at(p, "set device (a serial port such as /dev/ttyUSB0) or tcp (a converter's host:port)")
		case b.Device != "" && b.TCP != "":
			at(p+".tcp", "set either device or tcp, not both")
		case b.Protocol == ProtoModbusTCP && b.TCP == "":
			at(p+".device", "modbus-tcp needs tcp: host:port, not a serial device")
		}
		if b.TCP != "" {
			if _, port, err := net.SplitHostPort(b.TCP); err != nil || port == "" {
				at(p+".tcp", "%q is not host:port; expected e.g. 192.168.1.50:502", b.TCP)
			}
		}
		if b.Protocol != ProtoModbusTCP && !contains(standardBauds, b.Baud) {
			at(p+".baud", "%d is not a standard baud rate; expected one of %s", b.Baud, joinInts(standardBauds))
		}
		oneOf(at, p+".parity", b.Parity, "none", "even", "odd")
		if b.DataBits != 7 && b.DataBits != 8 {
			at(p+".data_bits", "%d is out of range; expected 7 or 8", b.DataBits)
		}
		if b.StopBits != 1 && b.StopBits != 2 {
			at(p+".stop_bits", "%d is out of range; expected 1 or 2", b.StopBits)
		}
		if b.Timeout != 0 && (b.Timeout < 10*time.Millisecond || b.Timeout > time.Minute) {
			at(p+".timeout", "%s is out of range 10ms..1m", b.Timeout)
		}
		if b.Retries < 0 || b.Retries > 10 {
			at(p+".retries", "%d is out of range 0..10", b.Retries)
		}
		if b.RS485 && b.Device == "" {
			at(p+".rs485", "rs485 applies only to a serial device")
		}
	}

	ids := map[string]bool{}
	addrs := map[string]string{}
	for i, m := range c.Meters {
		p := fmt.Sprintf("meters[%d]", i)
		switch {
		case m.ID == "":
			at(p+".id", "required: a stable id, e.g. flat-12")
		case !idPattern.MatchString(m.ID):
			at(p+".id", "%q is not a valid id; expected letters, digits, '-', '_' or '.' (no '/', '+', '#')", m.ID)
		case ids[m.ID]:
			at(p+".id", "meter %q is defined twice", m.ID)
		}
		ids[m.ID] = true
		if m.Timezone != "" {
			if _, err := time.LoadLocation(m.Timezone); err != nil {
				at(p+".timezone", "%q is not a known time zone; expected an IANA name such as Europe/Berlin", m.Timezone)
			}
		}
		b, ok := buses[m.Bus]
		if m.Bus == "" {
			at(p+".bus", "required: the name of one of the buses")
			continue
		}
		if !ok {
			at(p+".bus", "no bus named %q; expected one of %s", m.Bus, strings.Join(busNames(c.Buses), ", "))
			continue
		}
		checkCJTMeter(&c.Meters[i], b, p, at, written, nodes)
		checkMeterMemory(&c.Meters[i], b, p, at, written)
		switch m.Speaks(b) {
		case ProtoModbus, ProtoModbusTCP:
			lo, hi := 1, 247
			if b.Protocol == ProtoModbusTCP {
				lo, hi = 0, 255
			}
			if !written(p+".address") && b.Protocol == ProtoModbus {
				at(p+".address", "required: the Modbus unit id %d..%d", lo, hi)
			} else if m.Address < lo || m.Address > hi {
				at(p+".address", "%d is out of range %d..%d for %s", m.Address, lo, hi, b.Protocol)
			}
			if m.Secondary != "" {
				at(p+".secondary", "secondary addresses exist only on M-Bus; bus %q is %s", m.Bus, b.Protocol)
			}
			if m.Profile == "" {
				at(p+".profile", "required for Modbus meters: a register map by name, e.g. dynaflox-ultrad (see 'tidegate profiles')")
			}
		case ProtoMBus:
			if m.Secondary != "" {
				if !secondaryPattern.MatchString(m.Secondary) {
					at(p+".secondary", "%q is not a secondary address; expected 8 digits (the meter's id) or 16 hex digits (id, manufacturer, version, medium)", m.Secondary)
				}
				if written(p + ".address") {
					at(p+".address", "set either address or secondary, not both")
				}
			} else if !written(p + ".address") {
				at(p+".address", "required: an M-Bus primary address 0..250, or set secondary")
			} else if m.Address < 0 || m.Address > 250 {
				at(p+".address", "%d is out of range 0..250 for mbus", m.Address)
			}
			if m.Profile != "" {
				at(p+".profile", "profiles are Modbus register maps; M-Bus meters describe themselves")
			}
		}
		if b.Protocol != "" && (m.Secondary != "" || written(p+".address")) {
			key := m.Bus + "/" + strconv.Itoa(m.Address)
			if m.Speaks(b) == ProtoCJT188 {
				key = m.Bus + "/c/" + c.Meters[i].AddressLabel
			}
			if m.Secondary != "" {
				key = m.Bus + "/s/" + strings.ToUpper(m.Secondary)
			}
			if other, dup := addrs[key]; dup && !m.Disabled {
				at(p+".address", "meter %q already uses this address on bus %q", other, m.Bus)
			} else if !m.Disabled {
				addrs[key] = m.ID
			}
		}
		if m.Poll.Flow < time.Second || m.Poll.Flow > 24*time.Hour {
			at(p+".poll.flow", "%s is out of range 1s..24h", m.Poll.Flow)
		}
		if m.Poll.Totals < time.Second || m.Poll.Totals > 24*time.Hour {
			at(p+".poll.totals", "%s is out of range 1s..24h", m.Poll.Totals)
		}
		if !billingPattern.MatchString(m.Billing) {
			at(p+".billing_time", "%q is not a local time; expected HH:MM, e.g. 00:05", m.Billing)
		}
	}

	if c.Filter.BurstFor > 24*time.Hour {
		at("filter.burst_for", "%s is out of range 0..24h", c.Filter.BurstFor)
	}
	if c.Filter.Window < 0 || c.Filter.Window > time.Hour {
		at("filter.window", "%s is out of range 0..1h", c.Filter.Window)
	}
	if r := c.Filter.InitialRatio; r != 0 && (r < 0.2 || r > 2) {
		at("filter.initial_ratio", "%g is out of range 0.2..2 (reverse/forward registration; 0 = 0.75)", r)
	}
	for _, f := range []struct {
		path string
		v    float64
	}{{"filter.leak_flow_m3h", c.Filter.LeakFlow}, {"filter.burst_flow_m3h", c.Filter.BurstFlow}, {"filter.max_pipe_flow_m3h", c.Filter.MaxPipeFlow}} {
		if f.v < 0 || f.v > 1000 {
			at(f.path, "%g is out of range 0..1000 m3/h", f.v)
		}
	}
	if c.Buffer.CommitLatency < 0 || c.Buffer.CommitLatency > time.Minute {
		at("buffer.commit_latency", "%s is out of range; expected 10ms to 1m (default 1s)", c.Buffer.CommitLatency)
	} else if c.Buffer.CommitLatency > 0 && c.Buffer.CommitLatency < 10*time.Millisecond {
		at("buffer.commit_latency", "%s is out of range; expected 10ms to 1m (default 1s)", c.Buffer.CommitLatency)
	}
	if r := c.MQTT.ReconnectMax; r != 0 && (r < time.Second || r > time.Hour) {
		at("mqtt.reconnect_max", "%s is out of range; expected 1s to 1h (default 1m)", r)
	}
	for _, d := range []struct {
		key      string
		v        time.Duration
		none     bool // a negative value means none
		min, max time.Duration
	}{
		{"reconnect_min", c.MQTT.ReconnectMin, false, 10 * time.Millisecond, 10 * time.Minute},
		{"reconnect_jitter", c.MQTT.ReconnectJitter, true, 0, time.Hour},
		{"connect_gap", c.MQTT.ConnectGap, true, 0, time.Hour},
		{"probe_interval", c.MQTT.ProbeInterval, false, 10 * time.Millisecond, time.Hour},
		{"retained_wait", c.MQTT.RetainedWait, false, 10 * time.Millisecond, time.Minute},
		{"restart_min", c.MQTT.RestartMin, false, time.Millisecond, time.Hour},
		{"restart_max", c.MQTT.RestartMax, false, time.Millisecond, time.Hour},
		{"ack_timeout", c.MQTT.AckTimeout, false, 100 * time.Millisecond, time.Hour},
		{"keepalive", c.MQTT.KeepAlive, false, time.Second, time.Hour},
		{"historical_after", c.MQTT.HistoricalAfter, false, time.Second, 365 * 24 * time.Hour},
	} {
		if d.v == 0 || d.v < 0 && d.none {
			continue
		}
		if d.v < 0 {
			at("mqtt."+d.key, "cannot be off; expected %s to %s (0 or absent: the default)", d.min, d.max)
			continue
		}
		if d.v < d.min || d.v > d.max {
			at("mqtt."+d.key, "%s is out of range; expected %s to %s (0 or absent: the default)", d.v, d.min, d.max)
		}
	}
	if n := c.MQTT.MaxInflight; n < 0 || n > 1000 {
		at("mqtt.max_inflight", "%d is out of range; expected 1 to 1000 (0 or absent: the default 4)", n)
	}
	if c.Buffer.MaxRecords < 0 {
		at("buffer.max_records", "%d is negative; expected 0 (default) or more", c.Buffer.MaxRecords)
	}
	if c.Buffer.MaxBytes != 0 && c.Buffer.MaxBytes < 1<<20 {
		at("buffer.max_bytes", "%d bytes is too small; expected at least 1MiB", c.Buffer.MaxBytes)
	}

	c.validateMQTT(at)
}

func (c *Config) validateMQTT(at func(string, string, ...any)) {
	m := c.MQTT
	if m.Broker == "" {
		at("mqtt.broker", "required: the broker URL, e.g. tls://mqtt.example.net:8883")
	} else if u, err := url.Parse(m.Broker); err != nil || u.Host == "" {
		at("mqtt.broker", "%q is not a URL; expected scheme://host:port, e.g. tls://mqtt.example.net:8883", RedactURL(m.Broker))
	} else {
		secure := false
		switch u.Scheme {
		case "tcp", "mqtt", "ws":
		case "ssl", "tls", "mqtts", "wss":
			secure = true
		default:
			at("mqtt.broker", "scheme %q is not supported; expected tcp, mqtt, ssl, tls, mqtts, ws or wss", u.Scheme)
		}
		secure = secure || m.TLS.Enabled
		if !secure && !m.Insecure && !isLoopback(u.Hostname()) {
			at("mqtt.broker", "plain MQTT to %s would send readings and credentials in clear; use tls:// or set mqtt.insecure: true", u.Hostname())
		}
	}
	if strings.ContainsAny(m.TopicPrefix, "+#") || strings.HasPrefix(m.TopicPrefix, "/") || strings.HasSuffix(m.TopicPrefix, "/") {
		at("mqtt.topic_prefix", "%q is not a topic prefix; expected e.g. utility/water (no wildcards, no leading or trailing '/')", m.TopicPrefix)
	}
	oneOf(at, "mqtt.ack", m.Ack, "puback", "application")
	oneOf(at, "mqtt.unsigned_config", m.UnsignedConfig, "refuse", "allow")
	if r := m.ConfigRollbackAfter; r < 10*time.Second || r > 24*time.Hour {
		at("mqtt.config_rollback_after", "%s is out of range; expected 10s to 24h (default 10m)", r)
	}
	if h := m.HealthEvery; h < time.Second || h > 24*time.Hour {
		at("mqtt.health_every", "%s is out of range; expected 1s to 24h (default 5m)", h)
	}
	if m.Batch.MaxCount < 1 || m.Batch.MaxCount > 10000 {
		at("mqtt.batch.max_count", "%d is out of range 1..10000", m.Batch.MaxCount)
	}
	if m.Batch.MaxLatency < 0 || m.Batch.MaxLatency > time.Minute {
		at("mqtt.batch.max_latency", "%s is out of range 0..1m", m.Batch.MaxLatency)
	}
	if (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
		at("mqtt.tls.key_file", "a client certificate needs both cert_file and key_file")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func oneOf(at func(string, string, ...any), path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	if v == "" {
		at(path, "required: one of %s", strings.Join(allowed, ", "))
		return
	}
	at(path, "%q is not allowed; expected one of %s", v, strings.Join(allowed, ", "))
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func joinInts(list []int) string {
	s := make([]string, len(list))
	for i, v := range list {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

func busNames(bs []Bus) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	if len(out) == 0 {
		return []string{"(none defined)"}
	}
	return out
}
