package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
)

func writeConfig(t *testing.T, path, dir string, meters string) {
	t.Helper()
	y := `gateway: {id: gw-test}
log: {format: json}
api: {socket: ` + filepath.Join(dir, "api.sock") + `}
buses:
  - {name: a, protocol: modbus, device: /dev/null}
  - {name: b, protocol: mbus, device: /dev/null}
meters:
` + meters + `
buffer: {path: ` + filepath.Join(dir, "buf.db") + `}
mqtt: {broker: "tcp://127.0.0.1:1"}
`
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// TestDaemonReloadAndAPI runs the daemon in-process: the API answers on a 0660
// socket, a broken config on SIGHUP is refused and the old one keeps running,
// a changed meter list is applied, and a stop returns promptly.
func TestDaemonReloadAndAPI(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	writeConfig(t, cfgPath, dir, "  - {id: m1, bus: a, address: 1, profile: tuf2000m}\n  - {id: m2, bus: b, address: 2}")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	d := New(Options{Config: cfg, ConfigPath: cfgPath, Version: "test", Log: NewLogger(logs, "debug", "json")})
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, hup) }()

	sock := filepath.Join(dir, "api.sock")
	cl := unixClient(sock)
	var st Status
	waitFor(t, func() bool {
		resp, err := cl.Get("http://x/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&st) == nil
	})
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v, want 0660", fi.Mode(), err)
	}
	if st.Gateway != "gw-test" || len(st.Meters) != 2 || len(st.Buses) != 2 {
		t.Fatalf("status: %+v", st)
	}
	oldHash := st.ConfigHash

	// Records handed in by a bus show up as last readings and on /metrics.
	d.path().Own.Reading(reading.Reading{Meter: "m1", Received: time.Now(), Has: reading.HasForward, Forward: 12.5}, reading.KindReading)
	waitFor(t, func() bool {
		resp, err := cl.Get("http://x/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), `tidegate_meter_forward_m3{meter="m1"} 12.5`)
	})

	// Broken config: refused, old one kept.
	if err := os.WriteFile(cfgPath, []byte("gateway: {id: gw-test}\nmeters: [{id: x, bus: nowhere}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	waitFor(t, func() bool { s := d.status(); return s.Reloads == 1 })
	s := d.status()
	if s.ConfigHash != oldHash || len(s.Meters) != 2 || !strings.Contains(s.LastReload, "refused") {
		t.Fatalf("after a broken reload: hash %s meters %d last %q", s.ConfigHash, len(s.Meters), s.LastReload)
	}

	// Changed meter list: applied, only bus b restarted.
	writeConfig(t, cfgPath, dir, "  - {id: m1, bus: a, address: 1, profile: tuf2000m}\n  - {id: m2, bus: b, address: 2}\n  - {id: m3, bus: b, address: 3}")
	hup <- syscall.SIGHUP
	// Reloads counts a reload when it starts; "applied" and the log line
	// come after the buses have stopped and started.
	waitFor(t, func() bool { s := d.status(); return s.Reloads == 2 && !strings.Contains(s.LastReload, "refused") })
	s = d.status()
	if s.ConfigHash == oldHash || len(s.Meters) != 3 || !strings.Contains(s.LastReload, "applied") {
		t.Fatalf("after a good reload: hash %s meters %d last %q", s.ConfigHash, len(s.Meters), s.LastReload)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), `"msg":"reloaded"`) })
	if !strings.Contains(logs.String(), `"buses_restarted":["b"]`) {
		t.Errorf("reload log does not say only bus b restarted:\n%s", logs.String())
	}

	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop within 10s")
	}
	if time.Since(t0) > 6*time.Second {
		t.Errorf("stop took %s", time.Since(t0))
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind after stop: %v", err)
	}
}

func TestWriteMetricsEscapes(t *testing.T) {
	var b bytes.Buffer
	writeMetrics(&b, Status{Gateway: `g"w\1`, Meters: []MeterStatus{{ID: "m\n1", State: "online"}}}, newHub())
	out := b.String()
	for _, want := range []string{`gateway="g\"w\\1"`, `tidegate_meter_online{meter="m\n1",bus=""} 1`, "# TYPE tidegate_buffer_records gauge"} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "# TYPE tidegate_meter_online ") != 1 {
		t.Error("a metric family's TYPE line is repeated")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer lets the test read logs the daemon writes from other goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
