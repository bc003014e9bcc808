package simulator

import (
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"tidegate/protocol/mbus"
)

// TestDemoConfig: the shipped configs/sim/demo.yaml runs a Modbus bus and an
// M-Bus bus of 8 meters each, and its replay meter answers REQ_UD2 with the
// captured telegram byte for byte.
func TestDemoConfig(t *testing.T) {
	cfg, err := LoadConfig("../configs/sim/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ports := s.Ports()
	if ports["rtu1"].Protocol != ProtocolModbus || len(ports["rtu1"].Meters) < 8 ||
		ports["mbus1"].Protocol != ProtocolMBus || len(ports["mbus1"].Meters) < 8 {
		t.Fatalf("demo buses: %+v", ports)
	}
	if cj := ports["cjt1"]; cj.Protocol != ProtocolCJT188 || len(cj.Meters) < 4 || cj.Meters[0].Address != "78330011223301" {
		t.Fatalf("demo CJ/T 188 bus: %+v", cj)
	}
	want, err := os.ReadFile("../configs/sim/replay-208.hex")
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, err := hex.DecodeString(strings.Join(strings.Fields(string(want)), ""))
	if err != nil {
		t.Fatal(err)
	}
	port := openPort(t, ports["mbus1"].Device, 2400)
	// The replay meter drops 20 % of requests: ask until it answers.
	for try := 0; try < 10; try++ {
		got, err := exchange(port, mbus.ShortFrame(mbus.CReqUd2|mbus.FCB, 8), 2*time.Second, nBytes(len(wantBytes)))
		if err != nil {
			continue
		}
		if string(got) != string(wantBytes) {
			t.Fatalf("replay answered\n% X\nwant\n% X", got, wantBytes)
		}
		return
	}
	t.Fatal("the replay meter never answered")
}
