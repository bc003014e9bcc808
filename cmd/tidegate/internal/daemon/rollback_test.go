package daemon

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
)

// fakeLink reaches a broker only with the configs whose broker it is told.
type fakeLink struct {
	mu sync.Mutex
	up map[string]bool // broker URL → reachable
}

func (f *fakeLink) Reached(c *config.Config) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up[c.MQTT.Broker]
}

func guardConfig(t *testing.T, path, broker string) *config.Config {
	t.Helper()
	y := "gateway: {id: gw-1}\nbuses: []\nmeters: []\nbuffer: {path: /tmp/unused.db}\nmqtt: {broker: \"" + broker + "\", commands: true, config_rollback_after: 20s}\n"
	if err := os.WriteFile(path, []byte(y), 0o640); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The rollback's timing over a fake clock and a fake link: a config that
// changed the broker and reaches none is rolled back when (and not before)
// mqtt.config_rollback_after has passed; the rollback is announced once,
// when the box is connected again; a restart in the middle of the window
// still rolls back, after a whole window from the start.
func TestRollbackGuardTiming(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tidegate.yaml")
	good := guardConfig(t, path, "tcp://127.0.0.1:1883")
	goodText, _ := os.ReadFile(path)
	bad := guardConfig(t, filepath.Join(dir, "new.yaml"), "tcp://127.0.0.1:9")
	link := &fakeLink{up: map[string]bool{"tcp://127.0.0.1:1883": true}}
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	var running *config.Config
	var events []reading.Event
	log := logrus.New()
	log.SetOutput(io.Discard)
	newGuard := func() *rollbackGuard {
		g := &rollbackGuard{path: path, log: log, link: link, now: func() time.Time { return now },
			apply: func() (*config.Config, error) {
				c, err := config.Load(path, nil)
				if err == nil {
					running = c
				}
				return c, err
			},
			event: func(e reading.Event) { events = append(events, e) }}
		g.load()
		return g
	}
	g := newGuard()
	running = good
	g.check(running) // connected: the running config is the last good
	if g.state.LastGood != good.Hash {
		t.Fatalf("last good %q, want %q", g.state.LastGood, good.Hash)
	}
	// The remote config arrives: written, applied.
	if probation, err := g.applying(good, bad); err != nil || !probation {
		t.Fatalf("a config moving to another broker: probation %v, %v", probation, err)
	}
	// The old config still runs (and reaches its broker) until the reload:
	// the new one stays on probation.
	g.check(good)
	if g.state.Pending != bad.Hash {
		t.Fatalf("pending %q after a look before the new config was applied, want %q", g.state.Pending, bad.Hash)
	}
	badText, _ := os.ReadFile(filepath.Join(dir, "new.yaml"))
	if err := config.WriteFile(path, badText); err != nil {
		t.Fatal(err)
	}
	running = bad
	for _, after := range []time.Duration{time.Second, 10 * time.Second, 19 * time.Second} {
		now = now.Add(after - now.Sub(now.Truncate(time.Hour)))
		g.check(running)
		if running != bad {
			t.Fatalf("rolled back %s after the change; the window is 20s", after)
		}
	}
	// A restart 19 s into the window: the window starts again.
	g = newGuard()
	now = now.Add(19 * time.Second)
	g.check(running)
	if running != bad {
		t.Fatal("rolled back 19s after a restart; the window starts again at the start")
	}
	now = now.Add(2 * time.Second)
	g.check(running)
	if running == bad || running.Hash != good.Hash {
		t.Fatalf("not rolled back 21s after the restart: running %s", running.Hash)
	}
	if b, _ := os.ReadFile(path); string(b) != string(goodText) {
		t.Errorf("config file after the rollback:\n%s", b)
	}
	if len(events) != 0 {
		t.Fatalf("announced before connecting again: %+v", events)
	}
	// Not connected yet with the old config either: still nothing to say;
	// a restart now keeps the announcement.
	link.mu.Lock()
	link.up["tcp://127.0.0.1:1883"] = false
	link.mu.Unlock()
	g.check(running)
	g = newGuard()
	link.mu.Lock()
	link.up["tcp://127.0.0.1:1883"] = true
	link.mu.Unlock()
	g.check(running)
	g.check(running)
	if len(events) != 1 || events[0].Type != "config_rolled_back" || events[0].Attrs["from"] != bad.Hash || events[0].Attrs["to"] != good.Hash {
		t.Fatalf("events after reconnecting: %+v", events)
	}
	if !strings.Contains(events[0].Message, "20s") {
		t.Errorf("event message %q does not say why", events[0].Message)
	}
}

// A config that keeps the broker link is never put on probation: a broker
// outage after it is not the config's fault.
func TestRollbackGuardOnlyLinkChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tidegate.yaml")
	good := guardConfig(t, path, "tcp://127.0.0.1:1883")
	same := guardConfig(t, filepath.Join(dir, "b.yaml"), "tcp://127.0.0.1:1883")
	same.Hash = "other"
	same.MQTT.Batch.MaxCount, same.MQTT.HealthEvery, same.MQTT.Ack = 7, time.Minute, "application" // not the link
	link := &fakeLink{up: map[string]bool{"tcp://127.0.0.1:1883": true}}
	log := logrus.New()
	log.SetOutput(io.Discard)
	now := time.Now()
	g := &rollbackGuard{path: path, log: log, link: link, now: func() time.Time { return now },
		apply: func() (*config.Config, error) { t.Fatal("rolled back"); return nil, nil }, event: func(reading.Event) {}}
	g.check(good)
	if probation, err := g.applying(good, same); err != nil || probation {
		t.Fatalf("a config keeping the link: probation %v, %v", probation, err)
	}
	link.up["tcp://127.0.0.1:1883"] = false
	now = now.Add(time.Hour)
	g.check(same)
	if g.state.Pending != "" {
		t.Errorf("pending %q for a config that kept the link", g.state.Pending)
	}
}
