package uplink

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config { return Config{Broker: "tcp://127.0.0.1:1883", Gateway: "gw1"} }
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want error // nil: accepted
	}{
		{"loopback plain", func(c *Config) {}, nil},
		{"localhost plain", func(c *Config) { c.Broker = "mqtt://localhost" }, nil},
		{"ipv6 loopback plain", func(c *Config) { c.Broker = "tcp://[::1]:1883" }, nil},
		{"remote plain refused", func(c *Config) { c.Broker = "tcp://broker.example:1883" }, ErrInsecure},
		{"remote plain by IP refused", func(c *Config) { c.Broker = "tcp://10.0.0.5:1883" }, ErrInsecure},
		{"remote plain with insecure", func(c *Config) { c.Broker = "tcp://broker.example:1883"; c.Insecure = true }, nil},
		{"remote TLS", func(c *Config) { c.Broker = "ssl://broker.example" }, nil},
		{"mqtts", func(c *Config) { c.Broker = "mqtts://broker.example:8883" }, nil},
		{"tls files with plain TCP", func(c *Config) { c.TLS.CAFile = "ca.pem" }, ErrConfig},
		{"cert without key", func(c *Config) { c.Broker = "ssl://b.example"; c.TLS.CertFile = "c.pem" }, ErrConfig},
		{"no gateway", func(c *Config) { c.Gateway = "" }, ErrConfig},
		{"gateway with slash", func(c *Config) { c.Gateway = "a/b" }, ErrConfig},
		{"gateway with colon", func(c *Config) { c.Gateway = "a:b" }, ErrConfig},
		{"wildcard prefix", func(c *Config) { c.TopicPrefix = "a/#" }, ErrConfig},
		{"qos 0", func(c *Config) { c.QoS = -1 }, ErrConfig},
		{"qos 2", func(c *Config) { c.QoS = 2 }, ErrConfig},
		{"ack mode", func(c *Config) { c.Ack = "never" }, ErrConfig},
		{"application ack", func(c *Config) { c.Ack = AckApplication }, nil},
		{"bad scheme", func(c *Config) { c.Broker = "http://127.0.0.1" }, ErrConfig},
		{"not a URL", func(c *Config) { c.Broker = "127.0.0.1:1883" }, ErrConfig},
		{"both password sources", func(c *Config) { c.PasswordFile = "f"; c.PasswordEnv = "E" }, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.withDefaults().validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("validate: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	doc := `
broker: ssl://broker.example:8883
client_id: box-7
gateway: gw7
topic_prefix: utility
username: box7
password_file: /etc/tidegate/mqtt.pass
tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/c.key, server_name: mqtt.example}
qos: 1
batch: {max_count: 100, max_bytes: 65536, max_latency: 2s}
max_inflight: 8
historical_after: 15m
ack: application
commands: true
`
	var c Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{Broker: "ssl://broker.example:8883", ClientID: "box-7", Gateway: "gw7", TopicPrefix: "utility",
		Username: "box7", PasswordFile: "/etc/tidegate/mqtt.pass",
		TLS: TLSConfig{CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/c.key", ServerName: "mqtt.example"},
		QoS: 1, Batch: BatchConfig{MaxCount: 100, MaxBytes: 65536, MaxLatency: 2 * time.Second}, MaxInflight: 8,
		HistoricalAfter: 15 * time.Minute, Ack: AckApplication, Commands: true}
	c.Status, want.Status = nil, nil
	if c.Broker != want.Broker || c.TLS != want.TLS || c.Batch != want.Batch || c.HistoricalAfter != want.HistoricalAfter ||
		c.Ack != want.Ack || !c.Commands || c.MaxInflight != 8 || c.ClientID != "box-7" || c.PasswordFile != want.PasswordFile {
		t.Fatalf("decoded %+v\nwant    %+v", c, want)
	}
	if err := c.withDefaults().validate(); err != nil {
		t.Fatal(err)
	}
	if got := newTopics(c.TopicPrefix, c.Gateway); got.readings != "utility/v1/gw7/readings" || got.cmdResult("r1") != "utility/v1/gw7/cmd/r1/result" {
		t.Fatalf("topics %+v", got)
	}
}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pass")
	os.WriteFile(f, []byte("s3cret-file\n"), 0o600)
	t.Setenv("TIDEGATE_TEST_PW", "s3cret-env")
	for _, tc := range []struct {
		name string
		c    Config
		want string
		err  bool
	}{
		{"file, newline trimmed", Config{PasswordFile: f}, "s3cret-file", false},
		{"env", Config{PasswordEnv: "TIDEGATE_TEST_PW"}, "s3cret-env", false},
		{"missing file", Config{PasswordFile: f + ".nope"}, "", true},
		{"unset env", Config{PasswordEnv: "TIDEGATE_TEST_PW_UNSET"}, "", true},
		{"none", Config{}, "", false},
	} {
		got, err := tc.c.password()
		if got != tc.want || (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrPassword)) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}
}

// TestPasswordNeverLogged runs a full session at debug level against a broker
// that refuses then accepts, and greps every log line for the secret.
func TestPasswordNeverLogged(t *testing.T) {
	br := startMochi(t)
	q := openBuffer(t)
	last := fill(t, q, 300, 2)
	t.Setenv("TIDEGATE_TEST_PW", "hunter2-very-secret")
	cfg := testConfig(br.URL())
	cfg.Username, cfg.PasswordEnv = "gw1", "TIDEGATE_TEST_PW"
	log, logs := quietLog(t)
	u, err := New(cfg, q, log)
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)
	waitFor(t, 10*time.Second, "drained", func() bool { return q.Cursor() == last })
	bad := cfg
	bad.Broker = "tcp://127.0.0.1:1" // nothing listens: connect errors get logged
	u2, err := New(bad, openBuffer(t), log)
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u2)
	waitFor(t, 5*time.Second, "a connect error", func() bool { return u2.Stats().LastError != "" })
	out := logs.String()
	if !strings.Contains(out, "uplink connected") || !strings.Contains(out, "uplink connect failed") {
		t.Fatalf("expected logs missing:\n%s", out)
	}
	if strings.Contains(out, "hunter2") || strings.Contains(u2.Stats().LastError, "hunter2") {
		t.Fatalf("password in the log:\n%s", out)
	}
}
