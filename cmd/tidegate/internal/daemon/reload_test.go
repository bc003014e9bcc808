package daemon

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
)

// A reload stops the buses it removes outside d.mu: while a bus takes its
// grace period to finish, the config, status and reads (everything that
// takes d.mu) are still served. The bus here never finishes until the test
// lets it, and the grace is longer than the test: with d.mu held across the
// stop, the probe below would wait for the release and the test fail.
func TestReloadStopsBusesOutsideLock(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	writeConfig(t, cfgPath, dir, "  - {id: m1, bus: a, address: 1, profile: tuf2000m}\n  - {id: m2, bus: b, address: 2}")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(Options{Config: cfg, ConfigPath: cfgPath, Log: log, ShutdownGrace: time.Hour})
	bcfg, _ := cfg.BusByName("b")
	stopping, release := make(chan struct{}), make(chan struct{})
	slow := &busRun{cfg: bcfg, done: release, cancel: func() { close(stopping) }}
	d.mu.Lock()
	d.buses["b"] = slow
	d.mu.Unlock()

	// Bus b loses its meter: the reload stops b and starts it anew.
	writeConfig(t, cfgPath, dir, "  - {id: m1, bus: a, address: 1, profile: tuf2000m}")
	reloaded := make(chan struct{})
	go func() { defer close(reloaded); d.reload() }()
	select {
	case <-stopping:
	case <-time.After(time.Minute):
		t.Fatal("reload did not stop bus b")
	}

	served := make(chan error, 1)
	go func() {
		_ = d.config()
		// Bus a is not running here: readNow takes d.mu, finds no bus
		// and says so.
		_, err := d.readNow(context.Background(), "m1")
		served <- err
	}()
	select {
	case err := <-served:
		if err == nil {
			t.Fatal("readNow of a meter whose bus is not running succeeded")
		}
	case <-time.After(30 * time.Second): // the probe takes microseconds; the stop never ends by itself
		close(release)
		t.Fatal("config and reads were not served while a bus was stopping: d.mu held across the stop")
	}
	select {
	case <-reloaded:
		t.Fatal("reload finished before bus b had stopped")
	default:
	}
	close(release)
	<-reloaded
	if c := d.config(); len(c.Buses) != 2 || len(c.Meters) != 1 {
		t.Fatalf("after the reload: %d buses, %d meters; want the new config (2 buses, 1 meter)", len(c.Buses), len(c.Meters))
	}
	d.mu.Lock()
	nb := d.buses["b"]
	d.mu.Unlock()
	if nb == nil || nb == slow {
		t.Fatal("bus b not restarted after the reload")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nb.stop(ctx)
}
