package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tidegate/simulator"
)

func startScanSim(t *testing.T) *simulator.Sim {
	t.Helper()
	cfg, err := simulator.ParseConfig("../../configs/sim/scan.yaml", []byte(`
profiles: ../profiles
buses:
  - name: rtu
    protocol: modbus
    baud: 38400
    turnaround: 2ms
    meters:
      - {id: m1, address: 1, profile: tuf2000m}
      - {id: m5, address: 5, profile: dynaflox-ultrad}
      - {id: m9, address: 9, profile: arad-octave}
  - name: mb
    protocol: mbus
    baud: 9600
    turnaround: 5ms
    meters:
      - {id: k1, address: 3, model: flowiq, secondary: "12345611"}
      - {id: k2, address: 7, model: ultrimis, secondary: "12345612"}
      - {id: k3, address: 20, model: flowiq, secondary: "87000001"}
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := simulator.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestScanFindsTheSimulatedMeters: each scan finds exactly the meters metersim
// has, and --append-config writes them into a config that still validates.
func TestScanFindsTheSimulatedMeters(t *testing.T) {
	s := startScanSim(t)
	ports := s.Ports()
	code, out, errOut := runCmd(t, "", "scan", "--port", ports["rtu"].Device, "--protocol", "modbus", "--baud", "38400", "--to", "12", "--timeout", "60ms")
	if code != 0 || !strings.Contains(out, "3 meters found") {
		t.Fatalf("modbus scan: code %d\n%s%s", code, out, errOut)
	}
	for _, a := range []string{"rtu 1 ", "rtu 5 ", "rtu 9 "} {
		if !strings.Contains(strings.Join(strings.Fields(out), " ")+" ", strings.Replace(a, "rtu", "bus-"+filepath.Base(ports["rtu"].Device), 1)) {
			t.Errorf("modbus scan lacks %q:\n%s", a, out)
		}
	}
	code, out, errOut = runCmd(t, "", "scan", "--port", ports["mb"].Device, "--protocol", "mbus", "--baud", "9600", "--to", "25", "--bus", "mb")
	if code != 0 || !strings.Contains(out, "3 meters found") {
		t.Fatalf("m-bus primary scan: code %d\n%s%s", code, out, errOut)
	}
	for _, a := range []string{"mb 3 ", "mb 7 ", "mb 20 "} {
		if !strings.Contains(strings.Join(strings.Fields(out), " ")+" ", a) {
			t.Errorf("m-bus primary scan lacks %q:\n%s", a, out)
		}
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(cfgPath, []byte("gateway: {id: gw}\nbuses:\n  - {name: mb, protocol: mbus, device: "+ports["mb"].Device+"}\nbuffer: {path: "+filepath.Join(dir, "b.db")+"}\nmqtt: {broker: tcp://127.0.0.1:1883}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(t, "", "scan", "--port", ports["mb"].Device, "--protocol", "mbus", "--baud", "9600", "--secondary", "--bus", "mb", "--append-config", cfgPath)
	if code != 0 || !strings.Contains(out, "3 meters found") {
		t.Fatalf("m-bus secondary scan: code %d\n%s%s", code, out, errOut)
	}
	for _, id := range []string{"12345611", "12345612", "87000001"} {
		if !strings.Contains(out, id) {
			t.Errorf("secondary scan lacks %s:\n%s", id, out)
		}
	}
	if code, out, errOut := runCmd(t, "", "config", "validate", cfgPath); code != 0 {
		t.Errorf("config after --append-config does not validate: %s%s", out, errOut)
	}
	data, _ := os.ReadFile(cfgPath)
	if strings.Count(string(data), "secondary") != 3 {
		t.Errorf("appended config:\n%s", data)
	}
}

func TestStandaloneRead(t *testing.T) {
	s := startScanSim(t)
	ports := s.Ports()
	code, out, errOut := runCmd(t, "", "read", "--port", ports["rtu"].Device, "--baud", "38400", "--address", "5", "--profile", "dynaflox-ultrad")
	if code != 0 || !strings.Contains(out, "battery") || !strings.Contains(out, "3600 mV") {
		t.Fatalf("read: code %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "read", "--port", ports["rtu"].Device, "--baud", "38400", "--address", "5", "--raw", "14", "2")
	if code != 0 || !strings.Contains(out, "3600") || !strings.Contains(out, "uint32 ABCD") {
		t.Fatalf("read --raw: code %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "read", "--port", ports["mb"].Device, "--protocol", "mbus", "--baud", "9600", "--secondary", "12345612")
	if code != 0 || !strings.Contains(out, "forward") {
		t.Fatalf("m-bus read: code %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "", "read", "--port", ports["rtu"].Device, "--address", "300", "--profile", "tuf2000m"); code != exitUsage || !strings.Contains(errOut, "1..247") {
		t.Errorf("bad address: code %d %s", code, errOut)
	}
}
