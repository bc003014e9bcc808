package uplink

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is the uplink section of tidegate's configuration. The zero value
// of every optional field means its default (see withDefaults).
type Config struct {
	// Broker is the broker URL: tcp:// (or mqtt://) for plain TCP,
	// ssl://, tls:// or mqtts:// for TLS.
	Broker      string `yaml:"broker"`
	ClientID    string `yaml:"client_id"`    // default "tidegate-<gateway>"
	Gateway     string `yaml:"gateway"`      // required; first half of every record id
	TopicPrefix string `yaml:"topic_prefix"` // default "tidegate"

	Username string `yaml:"username"`
	// PasswordFile or PasswordEnv names where the password is; it is never
	// written in the config itself and never logged.
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// Password is the secret itself, for a caller that has read it already
	// (tidegate's config loader: from mqtt.password, its password_file or
	// TIDEGATE_MQTT_PASSWORD). Never logged.
	Password string `yaml:"-"`

	TLS TLSConfig `yaml:"tls"`
	// Insecure allows plain TCP to a non-loopback broker.
	Insecure bool `yaml:"insecure"`

	// QoS is fixed at 1; any other value is refused rather than ignored.
	QoS int `yaml:"qos"`

	Batch BatchConfig `yaml:"batch"`
	// MaxInflight bounds the batches published and not yet acknowledged.
	MaxInflight int `yaml:"max_inflight"`
	// HistoricalAfter: records older than this when sent carry
	// "historical": true, so live dashboards can ignore a replayed backlog.
	HistoricalAfter time.Duration `yaml:"historical_after"`
	// Ack is "puback" (the buffer forgets a batch at its PUBACK) or
	// "application" (only when the central service publishes on .../ack the
	// highest contiguous seq it has stored).
	Ack string `yaml:"ack"`
	// Commands enables the downlink (.../cmd/<name>).
	Commands bool `yaml:"commands"`
	// CommandKeys are the central service's Ed25519 public keys (PEM
	// "PUBLIC KEY" files) by kid: a signed command's kid header picks one.
	// Two kids at once while a key is rotated.
	CommandKeys map[string]string `yaml:"command_keys"`
	// UnsignedValve accepts the unsigned JSON form of "valve" (warned at
	// start): the broker's ACL is then all that guards the valves.
	UnsignedValve bool `yaml:"unsigned_valve"`
	// UnsignedConfig accepts the unsigned JSON form of the remote
	// configuration commands (config, meters_upsert, meters_remove): a
	// config can point the box at another broker.
	UnsignedConfig bool `yaml:"unsigned_config"`
	// MaxPacket caps an incoming MQTT packet (default 64 KiB): a larger one
	// is never read into memory; the connection is closed and it is logged.
	MaxPacket int `yaml:"max_packet"`

	// AckTimeout: a batch without PUBACK after this long is sent again.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	KeepAlive  time.Duration `yaml:"keepalive"`
	// Connecting is fleet-safe (session.go): the first connect after start
	// and the first after a lost connection wait a random time in
	// [0, ReconnectJitter] (the spread; negative: none); after a failed
	// attempt the uplink waits out ConnectGap (20 s: at most 3 connects a
	// minute; negative: no gap) and then a time drawn from [0,
	// min(ReconnectMax, ReconnectMin × 2^n)] (full jitter; the range is
	// never narrower than the spread).
	// While it waits the uplink dials the broker's TCP port every
	// ProbeInterval: a broker that answers shortens the wait to a fresh
	// draw from the spread, never below the gap.
	ReconnectMin    time.Duration `yaml:"reconnect_min"`
	ReconnectMax    time.Duration `yaml:"reconnect_max"`
	ReconnectJitter time.Duration `yaml:"reconnect_jitter"`
	ConnectGap      time.Duration `yaml:"connect_gap"`
	ProbeInterval   time.Duration `yaml:"probe_interval"`
	// RetainedWait bounds how long the first connection waits for the
	// gateway's own retained status (its last_seq) before publishing.
	RetainedWait time.Duration `yaml:"retained_wait"`
	// RestartMin and RestartMax bound the full-jitter backoff before the
	// pump is started again after an error of the queue.
	RestartMin time.Duration `yaml:"restart_min"`
	RestartMax time.Duration `yaml:"restart_max"`

	// Status fills the retained birth message; nil sends gateway and
	// version only. The daemon passes a func so meters and buses are current.
	Status func() StatusInfo `yaml:"-"`
}

// TLSConfig is the tls section.
type TLSConfig struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// BatchConfig bounds one readings message.
type BatchConfig struct {
	MaxCount   int           `yaml:"max_count"`   // default 200
	MaxBytes   int           `yaml:"max_bytes"`   // default 256 KiB
	MaxLatency time.Duration `yaml:"max_latency"` // default 1 s
}

// StatusInfo is the content of the retained birth message.
type StatusInfo struct {
	Version    string   `json:"version,omitempty"`
	ConfigHash string   `json:"config_hash,omitempty"`
	Meters     []string `json:"meters,omitempty"`
	Buses      []string `json:"buses,omitempty"`
	// SeqBase: the buffer file's seqs start above it (a fresh file numbers
	// from the clock), so a service acking "everything up to" knows where
	// its gateway's sequence begins.
	SeqBase uint64 `json:"seq_base,omitempty"`
	// Health is the gateway's health when it was published (health.go).
	Health *Health `json:"health,omitempty"`
	// Parts are the daemon's supervised parts and their states.
	Parts []PartState `json:"parts,omitempty"`
}

// PartState is one supervised part in the retained status.
type PartState struct {
	Name     string `json:"name"`
	State    string `json:"state"` // running, restarting
	Restarts uint64 `json:"restarts"`
	Error    string `json:"error,omitempty"`
}

// Ack modes.
const (
	AckPuback      = "puback"
	AckApplication = "application"
)

// Defaults.
const (
	DefaultTopicPrefix     = "tidegate"
	DefaultMaxCount        = 200
	DefaultMaxBytes        = 256 << 10
	DefaultMaxLatency      = time.Second
	DefaultMaxInflight     = 4
	DefaultHistoricalAfter = 10 * time.Minute
	DefaultAckTimeout      = 30 * time.Second
	DefaultKeepAlive       = 30 * time.Second
	DefaultReconnectMin    = time.Second
	DefaultReconnectMax    = time.Minute
	DefaultReconnectJitter = 30 * time.Second
	DefaultConnectGap      = 20 * time.Second
	DefaultProbeInterval   = 5 * time.Second
	DefaultRetainedWait    = 2 * time.Second
	DefaultRestartMin      = 100 * time.Millisecond
	DefaultRestartMax      = 30 * time.Second
	DefaultMaxPacket       = 64 << 10
)

func (c Config) withDefaults() Config {
	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
	}
	if c.MaxPacket == 0 {
		c.MaxPacket = DefaultMaxPacket
	}
	if c.ClientID == "" {
		c.ClientID = "tidegate-" + c.Gateway
	}
	if c.QoS == 0 {
		c.QoS = 1
	}
	if c.Batch.MaxCount <= 0 {
		c.Batch.MaxCount = DefaultMaxCount
	}
	if c.Batch.MaxBytes <= 0 {
		c.Batch.MaxBytes = DefaultMaxBytes
	}
	if c.Batch.MaxLatency <= 0 {
		c.Batch.MaxLatency = DefaultMaxLatency
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.HistoricalAfter <= 0 {
		c.HistoricalAfter = DefaultHistoricalAfter
	}
	if c.Ack == "" {
		c.Ack = AckPuback
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	c.ReconnectJitter = orNone(c.ReconnectJitter, DefaultReconnectJitter)
	c.ConnectGap = orNone(c.ConnectGap, DefaultConnectGap)
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.RetainedWait <= 0 {
		c.RetainedWait = DefaultRetainedWait
	}
	if c.RestartMin <= 0 {
		c.RestartMin = DefaultRestartMin
	}
	if c.RestartMax <= 0 {
		c.RestartMax = DefaultRestartMax
	}
	return c
}

// orNone: zero means the default, a negative duration means none.
func orNone(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}

// brokerURL parses and checks Broker; useTLS says whether the scheme is a TLS one.
func (c Config) brokerURL() (u *url.URL, useTLS bool, err error) {
	u, err = url.Parse(c.Broker)
	if err != nil || u.Host == "" {
		return nil, false, fmt.Errorf("%w: broker is not a URL like tcp://host:1883", ErrConfig) // not quoted: it may hold a password
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		u.Scheme = "tcp"
	case "ssl", "tls", "mqtts", "tcps":
		u.Scheme, useTLS = "ssl", true
	case "ws":
	case "wss":
		useTLS = true
	default:
		return nil, false, fmt.Errorf("%w: broker scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", ErrConfig, u.Scheme)
	}
	if u.Port() == "" {
		port := map[string]string{"tcp": "1883", "ssl": "8883", "ws": "80", "wss": "443"}[u.Scheme]
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, useTLS, nil
}

// Check says whether New would accept cfg, without reading the password or
// TLS files: what `tidegate config validate` runs, so that a config it
// accepts is one the daemon starts with.
func Check(cfg Config) error { return cfg.withDefaults().validate() }

func (c Config) validate() error {
	if c.Gateway == "" || strings.ContainsAny(c.Gateway, "/+#:") {
		return fmt.Errorf("%w: gateway %q must be set, without / + # or : in it", ErrConfig, c.Gateway)
	}
	if strings.ContainsAny(c.TopicPrefix, "+#") || strings.HasSuffix(c.TopicPrefix, "/") {
		return fmt.Errorf("%w: topic_prefix %q", ErrConfig, c.TopicPrefix)
	}
	if c.MaxPacket < maxCommandSize+1024 {
		return fmt.Errorf("%w: max_packet %d bytes; at least %d (a command and its topic)", ErrConfig, c.MaxPacket, maxCommandSize+1024)
	}
	if c.QoS != 1 {
		return fmt.Errorf("%w: qos %d: only QoS 1 gives at-least-once with PUBACKs", ErrConfig, c.QoS)
	}
	if c.Ack != AckPuback && c.Ack != AckApplication {
		return fmt.Errorf("%w: ack %q (want puback or application)", ErrConfig, c.Ack)
	}
	if n := btoi(c.PasswordFile != "") + btoi(c.PasswordEnv != "") + btoi(c.Password != ""); n > 1 {
		return fmt.Errorf("%w: set one of password, password_file and password_env", ErrConfig)
	}
	u, useTLS, err := c.brokerURL()
	if err != nil {
		return err
	}
	tlsFiles := c.TLS != (TLSConfig{})
	if !useTLS && tlsFiles {
		return fmt.Errorf("%w: tls files set but broker %s is plain TCP (use ssl:// or wss://)", ErrConfig, u.Redacted())
	}
	if !useTLS && !c.Insecure && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%w (broker %s)", ErrInsecure, u.Host)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("%w: tls cert_file and key_file go together", ErrConfig)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ReadPasswordFile is how a password file is read, wherever it is named:
// its first line, without the line end (`echo secret > file` is how people
// write them; anything after the first line is not part of the password).
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// password reads the secret.
func (c Config) password() (string, error) {
	switch {
	case c.Password != "":
		return c.Password, nil
	case c.PasswordFile != "":
		pw, err := ReadPasswordFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrPassword, err)
		}
		return pw, nil
	case c.PasswordEnv != "":
		v, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("%w: environment variable %s is not set", ErrPassword, c.PasswordEnv)
		}
		return v, nil
	}
	return "", nil
}

func (c Config) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ca_file: %w", ErrTLS, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca_file %s holds no PEM certificate", ErrTLS, c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %w", ErrTLS, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// hash identifies the effective config in the birth message when the daemon
// gives none. Secrets are names of files/variables here, not values.
func (c Config) hash() string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%s|%+v|%d|%d|%v", c.Broker, c.ClientID, c.Gateway, c.TopicPrefix, c.TLS, c.Batch.MaxCount, c.MaxInflight, c.Ack))
	return hex.EncodeToString(h[:8])
}
