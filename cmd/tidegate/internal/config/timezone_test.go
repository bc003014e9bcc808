package config

import (
	"strings"
	"testing"
)

// A meter's clock zone is its own where set (an M-Bus meter keeping
// Shanghai time behind a gateway on UTC), and an unknown zone is refused
// with its path.
func TestMeterTimezone(t *testing.T) {
	text := strings.Replace(cjtBase, "{id: m5, bus: b, address: 5}", "{id: m5, bus: b, address: 5, timezone: Asia/Shanghai}", 1)
	c, err := Parse("t.yaml", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Meters[4]; m.ID != "m5" || m.Timezone != "Asia/Shanghai" {
		t.Fatalf("meter %s timezone %q", m.ID, m.Timezone)
	}
	text = strings.Replace(cjtBase, "{id: m5, bus: b, address: 5}", "{id: m5, bus: b, address: 5, timezone: Mars/Olympus}", 1)
	if _, err := Parse("t.yaml", []byte(text), nil); err == nil || !strings.Contains(err.Error(), `meters[4].timezone: "Mars/Olympus" is not a known time zone`) {
		t.Fatalf("unknown zone: %v", err)
	}
}
