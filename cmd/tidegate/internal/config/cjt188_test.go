package config

import (
	"strings"
	"testing"

	"tidegate/protocol/cjt188"
)

const cjtBase = `gateway: {id: gw-1}
buses:
  - {name: c, protocol: cjt188, device: /dev/ttyS2, preamble: 4}
  - {name: b, protocol: mbus, device: /dev/ttyS1}
meters:
  - {id: c1, bus: c, address: 78330011223344, di_order: low-first, clock_order: century-first, status_profile: cjt188-mirrored, settlement_day: 15, valve: true}
  - {id: c2, bus: c, address: 00000024170589}
  - {id: c3, bus: c, address: "00000000000012", meter_type: "11"}
  - {id: c4, bus: b, protocol: cjt188, address: "78330011223399", di_order: low-first}
  - {id: m5, bus: b, address: 5}
mqtt:
  broker: tcp://127.0.0.1:1883
`

func TestCJT188Config(t *testing.T) {
	c, err := Parse("t.yaml", []byte(cjtBase), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.BusByName("c")
	if b.Baud != 2400 || b.Parity != "even" || b.CJTPreamble() != 4 {
		t.Fatalf("bus %+v preamble %d", b, b.CJTPreamble())
	}
	m := c.Meters
	// Leading zeros are kept, also with 8s and 9s that octal would refuse.
	if m[0].AddressLabel != "78330011223344" || m[1].AddressLabel != "00000024170589" || m[2].AddressLabel != "00000000000012" {
		t.Fatalf("address labels %q %q %q", m[0].AddressLabel, m[1].AddressLabel, m[2].AddressLabel)
	}
	if l, _ := StatusLayout(m[0].StatusProfile); l != cjt188.MirroredLayout || !m[0].Valve || m[0].SettlementDay != 15 {
		t.Fatalf("c1 %+v", m[0])
	}
	if l, _ := StatusLayout(m[1].StatusProfile); l != cjt188.CommonLayout {
		t.Fatal("default layout is not the common one")
	}
	mb, _ := c.BusByName("b")
	if m[3].Speaks(mb) != ProtoCJT188 || m[3].AddressLabel != "78330011223399" || m[4].Speaks(mb) != ProtoMBus {
		t.Fatalf("mixed line: %+v", m[3])
	}
}

// backfill and clock_sync are keys of CJ/T 188 and M-Bus meters.
func TestMeterMemoryConfig(t *testing.T) {
	text := strings.Replace(cjtBase, "{id: m5, bus: b, address: 5}", "{id: m5, bus: b, address: 5, backfill: true, clock_sync: 1m}", 1)
	text = strings.Replace(text, "valve: true}", "valve: true, backfill: true, clock_sync: 90s}", 1)
	c, err := Parse("t.yaml", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Meters; !m[0].Backfill || m[0].ClockSync.Seconds() != 90 || !m[4].Backfill || m[4].ClockSync.Seconds() != 60 || m[1].Backfill || m[1].ClockSync != 0 {
		t.Fatalf("%+v", m)
	}
	modbus := strings.Replace(text, "mqtt:", "  - {id: r1, bus: r, address: 1, profile: x, backfill: true}\nmqtt:", 1)
	modbus = strings.Replace(modbus, "buses:\n", "buses:\n  - {name: r, protocol: modbus, device: /dev/ttyS3}\n", 1)
	if _, err := Parse("t.yaml", []byte(modbus), nil); err == nil || !strings.Contains(err.Error(), "meters[5].backfill: applies only to CJ/T 188 and M-Bus meters") {
		t.Fatalf("backfill on a Modbus meter: %v", err)
	}
}

func TestCJT188ConfigProblems(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{"address: 78330011223344, di_order", "meters[0].address: \"7833001122334\" is not a CJ/T 188 address"},
		{"status_profile: cjt188-mirrored", "status_profile: \"odd\" is not a CJ/T 188 status profile"},
		{"clock_order: century-first", "clock_order: \"minutes-first\""},
		{"settlement_day: 15", "settlement_day: 31 is out of range"},
		{"preamble: 4", "preamble: 5 is out of range 0..4"},
		{"{id: m2x, bus: b, address: 2, valve: true}", "valve: applies only to CJ/T 188 meters"},
		{"{id: c9, bus: c, address: \"78330011223300\", clock_sync: 2s}", "meters[5].clock_sync: 2s is out of range 10s..24h"},
		{"{id: c3, bus: c, address: \"00000000000012\", meter_type: \"11\"}", "address: meter \"c1\" already uses this address"},
	} {
		text := cjtBase
		switch tc.edit {
		case "address: 78330011223344, di_order":
			text = strings.Replace(text, tc.edit, "address: 7833001122334, di_order", 1)
		case "status_profile: cjt188-mirrored":
			text = strings.Replace(text, tc.edit, "status_profile: odd", 1)
		case "clock_order: century-first":
			text = strings.Replace(text, tc.edit, "clock_order: minutes-first", 1)
		case "settlement_day: 15":
			text = strings.Replace(text, tc.edit, "settlement_day: 31", 1)
		case "preamble: 4":
			text = strings.Replace(text, tc.edit, "preamble: 5", 1)
		case "{id: c3, bus: c, address: \"00000000000012\", meter_type: \"11\"}":
			text = strings.Replace(text, tc.edit, "{id: c3, bus: c, address: \"78330011223344\"}", 1)
		default:
			text = strings.Replace(text, "mqtt:", "  "+"- "+tc.edit+"\nmqtt:", 1)
		}
		_, err := Parse("t.yaml", []byte(text), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", tc.edit, err, tc.want)
		}
	}
	// Only CJ/T 188 meters share an M-Bus line.
	text0 := strings.Replace(cjtBase, "{id: m5, bus: b, address: 5}", "{id: m5, bus: b, address: 5, protocol: modbus}", 1)
	if _, err := Parse("t.yaml", []byte(text0), nil); err == nil || !strings.Contains(err.Error(), "only cjt188 meters may sit on an mbus bus") {
		t.Errorf("modbus meter on mbus: %v", err)
	}
	// CJ/T 188 keys on other buses are refused, and preamble on an M-Bus bus.
	text := strings.Replace(cjtBase, "buses:\n", "buses:\n  - {name: a, protocol: modbus, device: /dev/ttyS0, preamble: 2}\n", 1)
	if _, err := Parse("t.yaml", []byte(text), nil); err == nil || !strings.Contains(err.Error(), "preamble: applies only to cjt188 and mbus buses") {
		t.Errorf("preamble on modbus: %v", err)
	}
}
