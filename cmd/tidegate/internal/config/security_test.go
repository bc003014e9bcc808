package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecurityKeys(t *testing.T) {
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	good := filepath.Join(dir, "k1.pub")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte("nope"), 0o644)
	const broker = "mqtt: {broker: \"tcp://127.0.0.1:1\"}\n"
	base := "gateway: {id: g}\nbuses: [{name: a, protocol: cjt188, tcp: \"127.0.0.1:1\"}]\nmeters: [{id: m1, bus: a, address: \"12345678901234\", valve: true%s}]\n"
	for _, tc := range []struct {
		name, meter, extra, want string
		warn                     []string
	}{
		{"keys", "", "mqtt: {broker: \"tcp://127.0.0.1:1\", commands: true, command_keys: {k1: " + good + "}}\n", "", nil},
		{"bad key file", "", "mqtt: {broker: \"tcp://127.0.0.1:1\", command_keys: {k2: " + bad + "}}\n", "t.yaml:4:56: mqtt.command_keys.k2", nil},
		{"missing key file", "", "mqtt: {broker: \"tcp://127.0.0.1:1\", command_keys: {k3: /nonexistent}}\n", "mqtt.command_keys.k3", nil},
		{"unsigned policy", "", "mqtt: {broker: \"tcp://127.0.0.1:1\", commands: true, unsigned_valve: maybe}\n", "mqtt.unsigned_valve: \"maybe\"", nil},
		{"unsigned allowed", "", "mqtt: {broker: \"tcp://127.0.0.1:1\", commands: true, unsigned_valve: allow}\n", "", []string{"unsigned_valve is allow"}},
		{"metrics on loopback", "", "api: {metrics: \"127.0.0.1:9475\"}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n", "", nil},
		{"metrics beyond loopback", "", "api: {metrics: \"0.0.0.0:9475\"}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n", "", []string{"beyond loopback"}},
		{"meter values beyond loopback", "", "api: {metrics: \":9475\", metrics_meter_values: true}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n", "", []string{"every household's meter totals"}},
		{"valve interval", ", valve_min_interval: 10s", "mqtt: {broker: \"tcp://127.0.0.1:1\"}\n", "", nil},
		{"small packet cap", "", "mqtt: {broker: \"tcp://127.0.0.1:1\", max_packet: 100}\n", "mqtt.max_packet", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(base, "%s", tc.meter, 1) + tc.extra
			c, err := Parse("t.yaml", []byte(y), nil)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Join(c.Warnings(), "\n")
			if len(tc.warn) == 0 && w != "" {
				t.Errorf("unexpected warnings: %s", w)
			}
			for _, x := range tc.warn {
				if !strings.Contains(w, x) {
					t.Errorf("warnings %q lack %q", w, x)
				}
			}
		})
	}
	c, _ := Parse("t.yaml", []byte(strings.Replace(base, "%s", ", valve_min_interval: 10s", 1)+broker), nil)
	if c == nil || c.Meters[0].ValveInterval().Seconds() != 10 {
		t.Fatal("valve_min_interval not read")
	}
	c, _ = Parse("t.yaml", []byte(strings.Replace(base, "%s", "", 1)+broker), nil)
	if c.Meters[0].ValveInterval() != DefaultValveMinInterval {
		t.Fatal("default valve_min_interval")
	}
}
