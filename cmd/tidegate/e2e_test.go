package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"tidegate/cmd/tidegate/internal/daemon"
)

// The end-to-end tests start the real binaries as processes: metersim,
// tidegate run, and an embedded MQTT broker in the test process (mosquitto is
// exercised by the uplink's own tests).

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildBinaries builds tidegate and metersim once per test binary run.
func buildBinaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tidegate-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "tidegate/cmd/tidegate", "tidegate/cmd/metersim", "tidegate/cmd/tidegate-receiver")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// testBroker is an embedded broker on a free loopback port with an
// in-process subscriber collecting every message.
type testBroker struct {
	srv  *mqtt.Server
	addr string
	mu   sync.Mutex
	msgs []brokerMsg
}

type brokerMsg struct {
	topic   string
	payload string
}

func startTestBroker(t testing.TB) *testBroker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(allowAllHook), nil); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "e2e", Address: "127.0.0.1:0"})
	if err := srv.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &testBroker{srv: srv, addr: ln.Address()}
	if err := srv.Subscribe("#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		b.mu.Lock()
		b.msgs = append(b.msgs, brokerMsg{pk.TopicName, string(pk.Payload)})
		b.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

func (b *testBroker) messages() []brokerMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]brokerMsg(nil), b.msgs...)
}

type allowAllHook struct{ mqtt.HookBase }

func (h *allowAllHook) ID() string { return "allow-all" }
func (h *allowAllHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (h *allowAllHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *allowAllHook) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

// proc is a started binary with its combined output captured.
type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), tailLines(p.out.String(), 40))
		}
	})
	return p
}

// stop sends sig and returns the exit code, failing after the timeout.
func (p *proc) stop(t *testing.T, sig os.Signal, timeout time.Duration) int {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s of %v", p.cmd.Path, timeout, sig)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func e2eConfig(dir, broker string, buses, meters string) string {
	return `gateway: {id: gw-e2e}
log: {level: debug, format: json}
api: {socket: ` + filepath.Join(dir, "api.sock") + `}
buses:
` + buses + `
meters:
` + meters + `
filter: {window: 2s}
buffer: {path: ` + filepath.Join(dir, "buffer.db") + `}
mqtt: {broker: "tcp://` + broker + `", topic_prefix: e2e, batch: {max_count: 20, max_latency: 200ms}, reconnect_jitter: off}
`
}

func status(t *testing.T, socket string) (daemon.Status, error) {
	t.Helper()
	var s daemon.Status
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := newAPIClient(socket).getJSON(ctx, "GET", "/v1/status", &s)
	return s, err
}

// TestE2EDaemonLifecycle: a real tidegate process serves its API, refuses a
// broken config on SIGHUP and keeps running the old one, applies a changed
// meter list on SIGHUP, and exits 0 promptly on SIGTERM.
func TestE2EDaemonLifecycle(t *testing.T) {
	bin := buildBinaries(t)
	br := startTestBroker(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tidegate.yaml")
	buses := "  - {name: a, protocol: modbus, tcp: \"127.0.0.1:1\"}\n"
	write := func(meters string) {
		if err := os.WriteFile(cfg, []byte(e2eConfig(dir, br.addr, buses, meters)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("  - {id: m1, bus: a, address: 1, profile: dynaflox-ultrad}")
	tg := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	socket := filepath.Join(dir, "api.sock")
	var st daemon.Status
	eventually(t, 10*time.Second, "tidegate answers on its control socket", func() bool {
		var err error
		st, err = status(t, socket)
		return err == nil
	})
	if len(st.Meters) != 1 {
		t.Fatalf("meters at start: %d", len(st.Meters))
	}
	oldHash := st.ConfigHash

	if err := os.WriteFile(cfg, []byte("gateway: {id: gw-e2e}\nmeters: [{id: m1, bus: nowhere}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = tg.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "the broken reload is refused", func() bool {
		s, err := status(t, socket)
		return err == nil && s.Reloads == 1 && strings.Contains(s.LastReload, "refused") && s.ConfigHash == oldHash
	})

	write("  - {id: m1, bus: a, address: 1, profile: dynaflox-ultrad}\n  - {id: m2, bus: a, address: 2, profile: dynaflox-ultrad}")
	_ = tg.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "the changed meter list is applied", func() bool {
		s, err := status(t, socket)
		return err == nil && s.Reloads == 2 && len(s.Meters) == 2 && s.ConfigHash != oldHash
	})

	t0 := time.Now()
	if code := tg.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if d := time.Since(t0); d > 6*time.Second {
		t.Errorf("SIGTERM took %s", d)
	}
	if !strings.Contains(tg.out.String(), `"msg":"stopped"`) {
		t.Errorf("no clean 'stopped' log line")
	}
}
