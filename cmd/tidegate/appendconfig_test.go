package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tidegate/cmd/tidegate/internal/config"
)

func TestAppendMeters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tidegate.yaml")
	start := config.Starter(config.StarterOptions{Broker: "tcp://127.0.0.1:1883", Protocol: "mbus"}, path)
	if err := os.WriteFile(path, start, 0o640); err != nil {
		t.Fatal(err)
	}
	found := []foundMeter{{Bus: "bus1", Address: 3, Note: "KAM water"}, {Bus: "bus1", Address: -1, Secondary: "12345678"}}
	n, err := appendMeters(path, found)
	if err != nil || n != 2 {
		t.Fatalf("append: %d, %v", n, err)
	}
	// Again: nothing new, nothing written twice.
	if n, err := appendMeters(path, found); err != nil || n != 0 {
		t.Fatalf("second append: %d, %v", n, err)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("appended config does not validate: %v", err)
	}
	if len(c.Meters) != 2 || c.Meters[0].ID != "bus1-3" || c.Meters[0].Address != 3 || c.Meters[1].Secondary != "12345678" {
		t.Fatalf("meters: %+v", c.Meters)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"# unique per concentrator", "# found by scan: KAM water", "protocol: mbus"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("appended file lacks %q (comments must survive)", want)
		}
	}
	// A Modbus meter without a profile would not validate: refused, file untouched.
	mb := filepath.Join(dir, "mb.yaml")
	if err := os.WriteFile(mb, config.Starter(config.StarterOptions{Broker: "tcp://127.0.0.1:1883"}, mb), 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(mb)
	if _, err := appendMeters(mb, []foundMeter{{Bus: "bus1", Address: 5}}); err == nil || !strings.Contains(err.Error(), "profile") {
		t.Errorf("modbus meter without a profile: %v", err)
	}
	after, _ := os.ReadFile(mb)
	if string(before) != string(after) {
		t.Error("a refused append changed the file")
	}
}
