package main

import (
	"context"
	"strings"
	"testing"

	"tidegate/simulator"
)

func startCJTSim(t *testing.T, meters string) string {
	t.Helper()
	cfg, err := simulator.ParseConfig("../../configs/sim/scan.yaml", []byte("buses:\n  - name: cj\n    protocol: cjt188\n    meters:\n"+meters))
	if err != nil {
		t.Fatal(err)
	}
	s, err := simulator.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Ports()["cj"].Device
}

func TestScanCJT188(t *testing.T) {
	one := startCJTSim(t, `      - {id: a, address: "78330123456789", di_order: low-first, preamble: 2}
`)
	code, out, errOut := runCmd(t, "", "scan", "--port", one, "--protocol", "cjt188")
	if code != exitOK || !strings.Contains(out, "address 78330123456789") || !strings.Contains(out, "low-first") {
		t.Fatalf("one meter: exit %d\n%s%s", code, out, errOut)
	}
	two := startCJTSim(t, `      - {id: a, address: "78330123456789"}
      - {id: b, address: "78330123456790"}
`)
	code, out, errOut = runCmd(t, "", "scan", "--port", two, "--protocol", "cjt188")
	if code != exitFailure || !strings.Contains(out, "several meters answered") || strings.Contains(out, "address 7833") {
		t.Fatalf("two meters: exit %d\n%s%s", code, out, errOut)
	}
	none := startCJTSim(t, `      - {id: a, address: "78330123456789", faults: {dead: true}}
`)
	if code, out, _ := runCmd(t, "", "scan", "--port", none, "--protocol", "cjt188"); code != exitOK || !strings.Contains(out, "0 meters found") {
		t.Fatalf("no meter: exit %d\n%s", code, out)
	}
}

func TestReadCJT188Standalone(t *testing.T) {
	dev := startCJTSim(t, `      - {id: a, address: "00000024170567", di_order: low-first, water: {profile: flat}}
`)
	code, out, errOut := runCmd(t, "", "read", "--port", dev, "--protocol", "cjt188", "--address", "00000024170567", "--json")
	if code != exitOK || !strings.Contains(out, `"forward_m3"`) || !strings.Contains(out, `"meter_time"`) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "", "read", "--port", dev, "--protocol", "cjt188", "--address", "12"); code != exitUsage || !strings.Contains(errOut, "14 digits") {
		t.Fatalf("short address: exit %d %s", code, errOut)
	}
}
