package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/cmd/tidegate/internal/daemon"
	"tidegate/reading"
)

func fp(v float64) *float64 { return &v }

func tp(t time.Time) *time.Time { return &t }

func TestWriteStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := daemon.Status{Gateway: "gw-9", Version: "v1", UptimeS: 3725, ConfigHash: "abc", Stages: []string{"drivers", "buffer"},
		Buses:  []daemon.BusStatus{{Name: "rs485-1", Protocol: "modbus", Port: "/dev/ttyUSB0", State: "running", Requests: 100, Timeouts: 3, Efficiency: 0.97}},
		Meters: []daemon.MeterStatus{{ID: "flat-01", Bus: "rs485-1", State: "online", Last: &reading.RecordJSON{GatewayTime: tp(now.Add(-7 * time.Second)), Forward: fp(12.3456), Quality: "good", Filter: &reading.FilterJSON{Flags: []string{"leak"}}}}, {ID: "flat-02", Bus: "rs485-1", State: "offline"}},
		Buffer: daemon.BufferStatus{Wired: true, Depth: 42, OldestAgeS: 61, Bytes: 3 << 20},
		Broker: daemon.BrokerStatus{Wired: true, URL: "tls://b:8883", Connected: true}}
	for _, colour := range []bool{false, true} {
		var b bytes.Buffer
		writeStatus(&b, s, paint(colour), now)
		out := b.String()
		for _, want := range []string{"tidegate gw-9", "up 1h2m5s", "drivers → buffer", "depth 42  oldest 1m1s  3.0 MiB", "12.346", "7s ago", "leak", "97%", "flat-02"} {
			if !strings.Contains(out, want) {
				t.Errorf("colour=%v: status lacks %q:\n%s", colour, want, out)
			}
		}
		if hasESC := strings.Contains(out, "\x1b["); hasESC != colour {
			t.Errorf("colour=%v but escape codes present=%v", colour, hasESC)
		}
	}
}

func TestWriteRecordLine(t *testing.T) {
	tm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	tests := []struct {
		in   reading.RecordJSON
		want []string
	}{
		{reading.RecordJSON{Kind: "reading", Meter: "m1", GatewayTime: &tm, Forward: fp(1.5),
			Filter: &reading.FilterJSON{Consumption: 0.01, Phantom: 0.002, Flags: []string{"self_rotation"}}},
			[]string{"03:04:05", "reading", "m1", "fwd 1.5000", "use 0.0100 m3", "phantom 0.0020 m3", "{self_rotation}"}},
		{reading.RecordJSON{Kind: "event", Meter: "m2", Time: &tm, Type: "meter_offline", Message: "no answer"}, []string{"event", "meter_offline: no answer"}},
		{reading.RecordJSON{Kind: "reading", Meter: "m3", GatewayTime: &tm, Quality: "error", Error: "timeout"}, []string{"[error: timeout]"}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeRecordLine(&b, tt.in)
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("line %q lacks %q", b.String(), w)
			}
		}
	}
}

// TestVerbsAgainstDaemon runs status, read and tail against an in-process
// daemon over its real socket, and checks the message when none runs.
func TestVerbsAgainstDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	y := "gateway: {id: gw-v}\napi: {socket: " + sock + "}\nbuses: [{name: a, protocol: modbus, tcp: \"127.0.0.1:1\"}]\n" +
		"meters: [{id: m1, bus: a, address: 1, profile: tuf2000m}]\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\nbuffer: {path: " + filepath.Join(dir, "b.db") + "}\n"
	cfgPath := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d := daemon.New(daemon.Options{Config: cfg, ConfigPath: cfgPath, Version: "t", Log: daemon.NewLogger(&logs, "error", "json")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, out, _ := runCmd(t, "", "status", "--socket", sock)
		if code == exitOK && strings.Contains(out, "tidegate gw-v") && strings.Contains(out, "m1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never succeeded: %d %q", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, errOut := runCmd(t, "", "read", "--socket", sock, "nope"); code != exitFailure || !strings.Contains(errOut, "no such meter") {
		t.Errorf("read of an unknown meter: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "status", "--socket", filepath.Join(dir, "none.sock")); code != exitFailure || !strings.Contains(errOut, "no daemon at") {
		t.Errorf("status without a daemon: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "read"); code != exitUsage {
		t.Errorf("read without a meter: %d %q", code, errOut)
	}
}
