package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
)

func TestCommands(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte("gateway: {id: g}\nbuses: [{name: a, protocol: mbus, tcp: \"127.0.0.1:1\"}]\nmeters: [{id: m1, bus: a, address: 1}]\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := commands{New(Options{Config: cfg})}
	ctx := context.Background()
	if _, err := c.ReadMeter(ctx, "nope"); !errors.Is(err, ErrUnknownMeter) {
		t.Errorf("read of an unknown meter: %v", err)
	}
	if _, err := c.ReadMeter(ctx, "m1"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("read on a bus not started: %v", err)
	}
	if err := c.SetInterval(ctx, "m1", time.Minute); !errors.Is(err, ErrIntervalRemote) {
		t.Errorf("set_interval: %v", err)
	}
	if err := c.SetInterval(ctx, "nope", time.Minute); !errors.Is(err, ErrUnknownMeter) {
		t.Errorf("set_interval of an unknown meter: %v", err)
	}
}
