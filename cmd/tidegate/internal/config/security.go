package config

import (
	"fmt"
	"net"
	"time"

	"tidegate/uplink/cmdauth"
)

// Unsigned valve policies (mqtt.unsigned_valve).
const (
	UnsignedRefuse = "refuse"
	UnsignedAllow  = "allow"
)

// DefaultValveMinInterval: at most one valve movement per meter per minute.
const DefaultValveMinInterval = time.Minute

// ValveInterval is the meter's valve_min_interval with its default.
func (m Meter) ValveInterval() time.Duration {
	if m.ValveMinInterval <= 0 {
		return DefaultValveMinInterval
	}
	return m.ValveMinInterval
}

// validateSecurity checks the keys that decide who may act.
func (c *Config) validateSecurity(at func(path, format string, a ...any)) {
	switch c.MQTT.UnsignedValve {
	case "", UnsignedRefuse, UnsignedAllow:
	default:
		at("mqtt.unsigned_valve", "%q: expected refuse (the default) or allow", c.MQTT.UnsignedValve)
	}
	for kid, f := range c.MQTT.CommandKeys {
		if !idPattern.MatchString(kid) {
			at("mqtt.command_keys."+kid, "kid %q: expected letters, digits, '-', '_' or '.'", kid)
			continue
		}
		if _, err := cmdauth.LoadKeys(map[string]string{kid: f}); err != nil {
			at("mqtt.command_keys."+kid, "%v; expected a PEM PUBLIC KEY file with an Ed25519 key", err)
		}
	}
	if c.MQTT.MaxPacket < 0 || (c.MQTT.MaxPacket > 0 && c.MQTT.MaxPacket < 8<<10) {
		at("mqtt.max_packet", "%d bytes: expected at least 8KiB (default 64KiB)", c.MQTT.MaxPacket)
	}
	for i, m := range c.Meters {
		if m.ValveMinInterval < 0 {
			at(fmt.Sprintf("meters[%d].valve_min_interval", i), "%s: expected a positive duration (default 1m)", m.ValveMinInterval)
		}
	}
}

// Warnings are what is valid but unsafe; `config validate` prints them and
// the daemon logs them at start.
func (c *Config) Warnings() []string {
	var w []string
	if c.API.Metrics != "" {
		if host, _, err := net.SplitHostPort(c.API.Metrics); err == nil && !loopback(host) {
			msg := fmt.Sprintf("api.metrics listens on %s, beyond loopback: anyone who can reach it reads the gateway's metrics", c.API.Metrics)
			if c.API.MetricsMeterValues {
				msg += ", including every household's meter totals (api.metrics_meter_values)"
			}
			w = append(w, msg)
		}
	}
	if c.MQTT.Commands && c.MQTT.UnsignedValve == UnsignedAllow {
		w = append(w, "mqtt.unsigned_valve is allow: anyone who may publish on the command topic can open and close valves")
	}
	if c.MQTT.Commands && c.MQTT.UnsignedConfig == UnsignedAllow {
		w = append(w, "mqtt.unsigned_config is allow: anyone who may publish on the command topic can rewrite this config, broker included")
	}
	return w
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
