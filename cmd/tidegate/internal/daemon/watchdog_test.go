package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
	"tidegate/cmd/tidegate/internal/datapath"
	"tidegate/pipeline"
	"tidegate/reading"
)

// sdSocket listens where systemd would (NOTIFY_SOCKET) and collects the
// daemon's messages.
type sdSocket struct {
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *sdSocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // a unix socket path must be short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	s := &sdSocket{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(b[:n]))
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sdSocket) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// The daemon says READY once running, RELOADING and READY around a
// SIGHUP, STOPPING on shutdown, and pings the watchdog while alive.
func TestSystemdNotify(t *testing.T) {
	sd := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "300000")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	writeConfig(t, cfgPath, dir, "  - {id: m1, bus: a, address: 1, profile: tuf2000m}")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := New(Options{Config: cfg, ConfigPath: cfgPath, Version: "test", Log: NewLogger(&syncBuffer{}, "debug", "json")})
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, hup) }()
	waitFor(t, func() bool { return sd.count("READY=1") == 1 && sd.count("WATCHDOG=1") >= 3 })
	hup <- os.Interrupt
	waitFor(t, func() bool { return sd.count("RELOADING=1") == 1 && sd.count("READY=1") == 2 })
	cancel()
	<-done
	if sd.count("STOPPING=1") != 1 {
		t.Errorf("messages: %v", sd.msgs)
	}
}

// hangingStore is a disk that hangs once armed: an append never returns.
type hangingStore struct {
	pipeline.Store
	hang chan struct{}
	on   chan struct{}
}

func (h *hangingStore) AppendWithJournal(ctx context.Context, st []buffer.State, j buffer.Journal, recs ...reading.Record) ([]uint64, error) {
	select {
	case <-h.on:
		<-h.hang
	default:
	}
	return h.Store.AppendWithJournal(ctx, st, j, recs...)
}

// The watchdog pings only while the pipeline owner turns: an owner stuck
// in an append on a hanging disk stops the pings (systemd then restarts
// the process). A bare ticker would ping a wedged daemon forever.
func TestWatchdogStopsForAWedgedPipeline(t *testing.T) {
	sd := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "300000")
	b, err := buffer.Open(filepath.Join(t.TempDir(), "b.db"), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hs := &hangingStore{Store: b, hang: make(chan struct{}), on: make(chan struct{})}
	defer close(hs.hang)
	p := pipeline.New(hs, pipeline.Options{Latency: 10 * time.Millisecond})
	logs := &syncBuffer{}
	d := New(Options{Log: NewLogger(logs, "debug", "json")})
	d.pipe = &datapath.Path{Own: p}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.watchdog(ctx)
	waitFor(t, func() bool { return sd.count("WATCHDOG=1") >= 3 })
	close(hs.on)
	p.Ingest(reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: time.Now(), Type: "x"}})
	waitFor(t, func() bool { return strings.Contains(logs.String(), "not pinging systemd") })
	n := sd.count("WATCHDOG=1")
	time.Sleep(500 * time.Millisecond) // five periods
	if m := sd.count("WATCHDOG=1"); m != n {
		t.Errorf("%d pings while the pipeline hung", m-n)
	}
	_ = logrus.InfoLevel
}
