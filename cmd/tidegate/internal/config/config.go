// Package config is tidegate's one configuration file: its types, the
// position-keeping YAML decoder, validation that reports every problem at
// once, secrets from the environment, and the diff SIGHUP acts on.
package config

import (
	"time"

	"tidegate/filter"
	pmodbus "tidegate/protocol/modbus"
)

// Config is one tidegate.yaml. Field tags are the YAML keys; the decoder
// rejects any key not listed here.
type Config struct {
	Gateway Gateway  `yaml:"gateway"`
	Log     Log      `yaml:"log"`
	API     API      `yaml:"api"`
	Buses   []Bus    `yaml:"buses"`
	Meters  []Meter  `yaml:"meters"`
	Filter  Filter   `yaml:"filter"`
	Buffer  Buffer   `yaml:"buffer"`
	MQTT    MQTT     `yaml:"mqtt"`
	Profile []string `yaml:"profile_dirs"` // folders whose Modbus profiles add to or override the built-in ones

	// Profiles is every Modbus profile this config can name: built in, then
	// /etc/tidegate/profiles, then profile_dirs. Parse fills it.
	Profiles map[string]*pmodbus.Profile `yaml:"-"`

	// File is where the config was read from ("" when built in code), Hash
	// a digest of its text with secrets replaced (redact.go) for the
	// uplink's birth message, and Source the text itself.
	File   string `yaml:"-"`
	Hash   string `yaml:"-"`
	Source []byte `yaml:"-"`
}

// Gateway identifies this concentrator to the central service.
type Gateway struct {
	ID       string `yaml:"id"`
	Timezone string `yaml:"timezone"` // IANA name for billing times and local days; "" = system local
}

// Log is the daemon's logging.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // auto|text|json; auto = text on a terminal, JSON otherwise
}

// API is the local control API.
type API struct {
	Socket  string `yaml:"socket"`  // Unix socket path, mode 0660
	Group   string `yaml:"group"`   // group that may use the socket; "" = the daemon's
	Metrics string `yaml:"metrics"` // optional TCP address for /metrics, e.g. 127.0.0.1:9475
	// ControlGroup may also act (valve, read-now, reload) besides root;
	// api.group may only read (status, readings, tail, metrics).
	ControlGroup string `yaml:"control_group"`
	// MetricsMeterValues puts each meter's totals and flow on /metrics:
	// a household's use, so off unless asked for.
	MetricsMeterValues bool `yaml:"metrics_meter_values"`
}

// Protocols a bus may speak.
const (
	ProtoModbus    = "modbus"     // Modbus RTU, on a serial line or an RTU-over-TCP converter
	ProtoModbusTCP = "modbus-tcp" // Modbus TCP (MBAP) to a gateway
	ProtoMBus      = "mbus"       // wired M-Bus, serial or TCP converter
	ProtoCJT188    = "cjt188"     // CJ/T 188 (Chinese water meters), M-Bus or RS-485 line, serial or TCP converter
)

// Bus is one serial line or one TCP converter; one request at a time.
type Bus struct {
	Name     string        `yaml:"name"`
	Protocol string        `yaml:"protocol"`
	Device   string        `yaml:"device"` // serial device path
	TCP      string        `yaml:"tcp"`    // host:port of a converter
	Baud     int           `yaml:"baud"`
	Parity   string        `yaml:"parity"` // none|even|odd
	DataBits int           `yaml:"data_bits"`
	StopBits int           `yaml:"stop_bits"`
	Timeout  time.Duration `yaml:"timeout"` // answer timeout; 0 = protocol default from the baud rate
	Retries  int           `yaml:"retries"`
	RS485    bool          `yaml:"rs485"` // kernel RS-485 mode (TIOCSRS485)
	// CJ/T 188 buses only (cjt188.go):
	Preamble   *int          `yaml:"preamble"`    // FE wake-up bytes before each request, 0..4; nil = 2
	ClockDrift time.Duration `yaml:"clock_drift"` // a meter clock this far off sends a clock_drift event; 0 = 5m
}

// Meter is one water meter on a bus.
type Meter struct {
	ID        string `yaml:"id"`     // stable id used in topics and the buffer
	Number    string `yaml:"number"` // the customer-facing meter number printed on the meter
	Bus       string `yaml:"bus"`
	Address   int    `yaml:"address"`   // Modbus unit id or M-Bus primary address
	Secondary string `yaml:"secondary"` // M-Bus secondary address: 8 digits, or 16 hex digits id+man+ver+med
	Profile   string `yaml:"profile"`   // Modbus register map, Modbus register map by name: tidegate profiles lists them
	Poll      Poll   `yaml:"poll"`
	Billing   string `yaml:"billing_time"` // local HH:MM of the guaranteed daily read; "" = 00:05
	Disabled  bool   `yaml:"disabled"`
	// Timezone is the IANA zone the meter's clock keeps (M-Bus date-times
	// are its wall clock with a summer-time bit); "" = gateway.timezone.
	Timezone string `yaml:"timezone"`
	CJT188   `yaml:",inline"`
}

// Poll is how often a meter is read.
type Poll struct {
	Flow   time.Duration `yaml:"flow"`   // instantaneous flow (and status)
	Totals time.Duration `yaml:"totals"` // cumulative totals
}

// Filter tunes the self-rotation filter.
type Filter struct {
	Enabled     *bool         `yaml:"enabled"` // nil = true
	Window      time.Duration `yaml:"window"`  // how long the filter may hold readings back
	LeakFlow    float64       `yaml:"leak_flow_m3h"`
	NoUse       time.Duration `yaml:"no_use"`
	BurstFlow   float64       `yaml:"burst_flow_m3h"`
	BurstFor    time.Duration `yaml:"burst_for"` // how long BurstFlow must last
	MaxPipeFlow float64       `yaml:"max_pipe_flow_m3h"`
	// InitialRatio is the reverse/forward registration ratio a meter starts
	// from until it has learned its own (and until three meters have, the
	// fleet's): the meter model's reverse gain error, if the datasheet
	// gives it. 0 = 0.75.
	InitialRatio float64 `yaml:"initial_ratio"`
}

// FilterConfig is the filter's configuration: the filter section, with the
// gateway's time zone for local days and nights (the system's when unset or
// unknown; Validate reports an unknown one).
func (c *Config) FilterConfig() filter.Config {
	f := c.Filter
	fc := filter.Config{Window: f.Window, LeakFlow: f.LeakFlow, NoUse: f.NoUse, BurstFlow: f.BurstFlow,
		BurstFor: f.BurstFor, MaxPipeFlow: f.MaxPipeFlow, InitialRatio: f.InitialRatio, Location: time.Local}
	if c.Gateway.Timezone != "" {
		if loc, err := time.LoadLocation(c.Gateway.Timezone); err == nil {
			fc.Location = loc
		}
	}
	return fc
}

// On reports whether the filter stage runs.
func (f Filter) On() bool { return f.Enabled == nil || *f.Enabled }

// Buffer is the durable store-and-forward queue.
type Buffer struct {
	Path       string `yaml:"path"`
	MaxBytes   Size   `yaml:"max_bytes"`
	MaxRecords int    `yaml:"max_records"`
	// CommitLatency bounds how long a reading waits to be committed with
	// the others that arrived meanwhile (default 1s): longer writes less
	// flash per reading, and loses more on a power cut.
	CommitLatency time.Duration `yaml:"commit_latency"`
}

// MQTT is the uplink to the central service.
type MQTT struct {
	Broker       string `yaml:"broker"` // tcp://, ssl://, tls://, mqtt://, mqtts:// URL
	ClientID     string `yaml:"client_id"`
	TopicPrefix  string `yaml:"topic_prefix"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`      // better: password_file or TIDEGATE_MQTT_PASSWORD
	PasswordFile string `yaml:"password_file"` // file holding the password (first line)
	TLS          TLS    `yaml:"tls"`
	Insecure     bool   `yaml:"insecure"` // allow plain TCP to a non-loopback broker
	Batch        Batch  `yaml:"batch"`
	Commands     bool   `yaml:"commands"` // accept downlink commands
	// CommandKeys: kid → PEM "PUBLIC KEY" file of the central service's
	// Ed25519 key that signs valve commands (two kids while rotating).
	CommandKeys map[string]string `yaml:"command_keys"`
	// UnsignedValve: "refuse" (default) or "allow" the unsigned JSON valve command.
	UnsignedValve string `yaml:"unsigned_valve"`
	// MaxPacket caps an incoming MQTT packet (default 64 KiB).
	MaxPacket Size `yaml:"max_packet"`
	// UnsignedConfig: "allow" lets the unsigned JSON form of the downlink
	// config, meters_upsert and meters_remove commands change this file;
	// "refuse" (the default) takes only signed ones. A config can point the
	// box at another broker.
	UnsignedConfig string `yaml:"unsigned_config"`
	// ConfigRollbackAfter: a remote config after which the box cannot reach
	// a broker for this long is rolled back to the last one that did (default 10m).
	ConfigRollbackAfter time.Duration `yaml:"config_rollback_after"`
	// HealthEvery is how often a health message is published and the
	// retained status refreshed (default 5m).
	HealthEvery time.Duration `yaml:"health_every"`
	Ack         string        `yaml:"ack"` // puback|application
	// The uplink's timing (uplink/README.md, uplink.Config): zero is the
	// default; reconnect_jitter and connect_gap may be "off".
	ReconnectMin    time.Duration `yaml:"reconnect_min"`    // first backoff after a failed connect (1s)
	ReconnectMax    time.Duration `yaml:"reconnect_max"`    // cap of the full-jitter backoff (1m)
	ReconnectJitter time.Duration `yaml:"reconnect_jitter"` // spread of the first connect after start or a loss (30s)
	ConnectGap      time.Duration `yaml:"connect_gap"`      // least time between two connects (20s: at most 3 a minute)
	ProbeInterval   time.Duration `yaml:"probe_interval"`   // TCP probe of the broker while waiting to connect (5s)
	RetainedWait    time.Duration `yaml:"retained_wait"`    // wait for the own retained status at start (2s)
	RestartMin      time.Duration `yaml:"restart_min"`      // backoff after a queue error, first (100ms)
	RestartMax      time.Duration `yaml:"restart_max"`      // and its cap (30s)
	AckTimeout      time.Duration `yaml:"ack_timeout"`      // no PUBACK by then: sent again (30s)
	KeepAlive       time.Duration `yaml:"keepalive"`        // MQTT keepalive (30s)
	HistoricalAfter time.Duration `yaml:"historical_after"` // older records carry "historical": true (10m)
	MaxInflight     int           `yaml:"max_inflight"`     // messages published and not yet acknowledged (4)
}

// TLS is the broker connection's TLS.
type TLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Batch bounds one published batch of readings.
type Batch struct {
	MaxCount   int           `yaml:"max_count"`
	MaxBytes   Size          `yaml:"max_bytes"`
	MaxLatency time.Duration `yaml:"max_latency"`
}

// Defaults fills what the file left out. Called by Load before validation, so
// validation sees the values the daemon will use.
func (c *Config) Defaults() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "auto"
	}
	for i := range c.Buses {
		b := &c.Buses[i]
		if b.Baud == 0 && b.Protocol != ProtoModbusTCP {
			if b.Protocol == ProtoMBus || b.Protocol == ProtoCJT188 {
				b.Baud = 2400
			} else {
				b.Baud = 9600
			}
		}
		if b.Parity == "" {
			if b.Protocol == ProtoMBus || b.Protocol == ProtoCJT188 {
				b.Parity = "even"
			} else {
				b.Parity = "none"
			}
		}
		if b.DataBits == 0 {
			b.DataBits = 8
		}
		if b.StopBits == 0 {
			b.StopBits = 1
		}
	}
	for i := range c.Meters {
		m := &c.Meters[i]
		if m.Poll.Flow == 0 {
			m.Poll.Flow = 30 * time.Second
		}
		if m.Poll.Totals == 0 {
			m.Poll.Totals = 15 * time.Minute
		}
		if m.Billing == "" {
			m.Billing = "00:05"
		}
	}
	if c.Filter.Window == 0 {
		c.Filter.Window = 15 * time.Minute
	}
	if c.Buffer.CommitLatency == 0 {
		c.Buffer.CommitLatency = time.Second
	}
	if c.Buffer.Path == "" {
		c.Buffer.Path = "/var/lib/tidegate/buffer.db"
	}
	if c.MQTT.TopicPrefix == "" {
		c.MQTT.TopicPrefix = "tidegate"
	}
	if c.MQTT.Ack == "" {
		c.MQTT.Ack = "puback"
	}
	if c.MQTT.UnsignedConfig == "" {
		c.MQTT.UnsignedConfig = "refuse"
	}
	if c.MQTT.ConfigRollbackAfter == 0 {
		c.MQTT.ConfigRollbackAfter = 10 * time.Minute
	}
	if c.MQTT.HealthEvery == 0 {
		c.MQTT.HealthEvery = 5 * time.Minute
	}
	if c.MQTT.Batch.MaxCount == 0 {
		c.MQTT.Batch.MaxCount = 200
	}
	if c.MQTT.Batch.MaxLatency == 0 {
		c.MQTT.Batch.MaxLatency = time.Second
	}
	if c.API.Socket == "" {
		c.API.Socket = "/run/tidegate/tidegate.sock"
	}
}

// BusByName finds a configured bus.
func (c *Config) BusByName(name string) (Bus, bool) {
	for _, b := range c.Buses {
		if b.Name == name {
			return b, true
		}
	}
	return Bus{}, false
}

// MeterByID finds a configured meter by id or customer number.
func (c *Config) MeterByID(id string) (Meter, bool) {
	for _, m := range c.Meters {
		if m.ID == id || (m.Number != "" && m.Number == id) {
			return m, true
		}
	}
	return Meter{}, false
}
