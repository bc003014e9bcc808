package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const base = `gateway: {id: gw-1}
buses:
  - {name: a, protocol: modbus, device: /dev/ttyS0}
  - {name: b, protocol: mbus, device: /dev/ttyS1}
meters:
  - {id: m1, bus: a, address: 1, profile: tuf2000m}
  - {id: m2, bus: b, address: 2}
mqtt:
  broker: tcp://127.0.0.1:1883
`

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"1000", 1000, true}, {"64MiB", 64 << 20, true}, {"512KB", 512000, true}, {"1 GiB", 1 << 30, true},
		{"12B", 12, true}, {"-1", 0, false}, {"lots", 0, false}, {"1.5MB", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := base + "  password_file: " + pw + "\n"
	c, err := Parse("t.yaml", []byte(withFile), nil)
	if err != nil || c.MQTT.Password != "s3cret" {
		t.Fatalf("password file: %v, %q", err, c.MQTT.Password)
	}
	env := map[string]string{EnvMQTTPassword: "fromenv", EnvMQTTUsername: "u"}
	c, err = Parse("t.yaml", []byte(withFile), func(k string) string { return env[k] })
	if err != nil || c.MQTT.Password != "fromenv" || c.MQTT.Username != "u" {
		t.Fatalf("env override: %v, %+v", err, c.MQTT)
	}
	// A missing password file is a problem with its position, and the env var is named as the way out.
	_, err = Parse("t.yaml", []byte(base+"  password_file: "+filepath.Join(dir, "nope")+"\n"), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "t.yaml:10:18: mqtt.password_file") || !strings.Contains(err.Error(), EnvMQTTPassword) {
		t.Fatalf("missing password file: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("a problem message leaked the password")
	}
}

func TestCompare(t *testing.T) {
	old, err := Parse("old.yaml", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, edit          string
		restarted, added    string
		metersAdded, global string
	}{
		{"unchanged", base, "", "", "", ""},
		{"meter added on b", strings.Replace(base, "meters:\n", "meters:\n  - {id: m3, bus: b, address: 3}\n", 1), "b", "", "m3", ""},
		{"bus a baud", strings.Replace(base, "device: /dev/ttyS0}", "device: /dev/ttyS0, baud: 19200}", 1), "a", "", "", ""},
		{"new bus", strings.Replace(base, "meters:\n", "  - {name: c, protocol: mbus, device: /dev/ttyS2}\nmeters:\n", 1), "", "c", "", ""},
		{"mqtt only", strings.Replace(base, "1883", "1884", 1), "", "", "", "mqtt"},
	}
	for _, tt := range tests {
		nw, err := Parse("new.yaml", []byte(tt.edit), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		d := Compare(old, nw)
		got := []string{strings.Join(d.BusesRestarted, ","), strings.Join(d.BusesAdded, ","), strings.Join(d.MetersAdded, ","), strings.Join(d.Global, ",")}
		want := []string{tt.restarted, tt.added, tt.metersAdded, tt.global}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: restarted|added|metersAdded|global = %q, want %q", tt.name, got, want)
		}
		if (tt.name == "unchanged") != d.Empty() {
			t.Errorf("%s: Empty() = %v", tt.name, d.Empty())
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.BusByName("a")
	b, _ := c.BusByName("b")
	if a.Baud != 9600 || a.Parity != "none" || b.Baud != 2400 || b.Parity != "even" {
		t.Errorf("bus defaults: %+v %+v", a, b)
	}
	m, ok := c.MeterByID("m2")
	if !ok || m.Billing != "00:05" || m.Poll.Flow.Seconds() != 30 {
		t.Errorf("meter defaults: %+v", m)
	}
}
