package uplink

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const mosquittoBin = "/usr/sbin/mosquitto"

// mosquitto is a Debian mosquitto started by the test on a free port.
type mosquitto struct {
	t    testing.TB
	dir  string
	conf string
	port int
	cmd  *exec.Cmd
}

func needMosquitto(t testing.TB) string {
	t.Helper()
	bin := mosquittoBin
	if _, err := os.Stat(bin); err != nil {
		p, err := exec.LookPath("mosquitto")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("mosquitto not installed (apt-get install -y mosquitto); required when CI=true")
			}
			t.Skip("mosquitto not installed (apt-get install -y mosquitto); skipping the Debian broker test")
		}
		bin = p
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMosquitto writes a config with extra listener lines (TLS) and starts
// the broker; it is killed when the test ends.
func startMosquitto(t testing.TB, extra string) *mosquitto {
	t.Helper()
	m := &mosquitto{t: t, dir: t.TempDir(), port: freePort(t)}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\n%s", m.port, extra)
	if os.Geteuid() == 0 {
		// As root mosquitto would drop to the "mosquitto" user, which cannot
		// read the test's private temp directory.
		conf = "user root\n" + conf
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.kill)
	return m
}

func (m *mosquitto) url(scheme string) string {
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, m.port)
}

func (m *mosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command(needMosquitto(m.t), "-c", m.conf)
	m.cmd.Stderr = &strings.Builder{}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not listen on %d: %s", m.port, m.cmd.Stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the broker, as a crash would.
func (m *mosquitto) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	_ = m.cmd.Wait()
	m.cmd = nil
}
