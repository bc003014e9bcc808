package daemon

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"tidegate/cmd/tidegate/internal/config"
)

func TestAuthzDecision(t *testing.T) {
	const ops = 1200 // the control group's gid
	a := authz{self: 999, controlGID: ops, groupsOf: func(uid uint32) []uint32 {
		if uid == 1002 {
			return []uint32{100, ops}
		}
		return []uint32{100}
	}}
	for _, tc := range []struct {
		name string
		p    peer
		need access
		ok   bool
	}{
		{"reader reads", peer{UID: 1001, GID: 100, Known: true}, accessRead, true},
		{"reader may not act", peer{UID: 1001, GID: 100, Known: true}, accessControl, false},
		{"root acts", peer{UID: 0, GID: 0, Known: true}, accessControl, true},
		{"the daemon's user acts", peer{UID: 999, GID: 999, Known: true}, accessControl, true},
		{"control group as primary gid", peer{UID: 1003, GID: ops, Known: true}, accessControl, true},
		{"control group as supplementary", peer{UID: 1002, GID: 100, Known: true}, accessControl, true},
		{"unknown caller may not act", peer{}, accessControl, false},
		{"unknown caller reads", peer{}, accessRead, true},
	} {
		err := a.allow(tc.p, tc.need)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("%s: %v, want allowed=%v", tc.name, err, tc.ok)
		}
	}
	none := authz{self: 999, controlGID: -1, groupsOf: func(uint32) []uint32 { return []uint32{ops} }}
	if err := none.allow(peer{UID: 1002, GID: ops, Known: true}, accessControl); err == nil {
		t.Error("without api.control_group a group member may act")
	}
}

// A user who can open the socket (here nobody, through api.group) reads
// status and is refused a valve command, over a real socket, identified by
// SO_PEERCRED; root is not refused, and its valve event names it.
func TestSocketReaderCannotAct(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as nobody")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl")
	}
	dir, err := os.MkdirTemp("", "tidegate-access-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // nobody must reach the socket; its own mode and group still gate it
	sock := filepath.Join(dir, "api.sock")
	y := "gateway: {id: gw-test}\napi: {socket: " + sock + ", group: nogroup}\n" +
		"buses: [{name: a, protocol: cjt188, tcp: \"127.0.0.1:1\"}]\n" +
		"meters: [{id: flat-04, bus: a, address: \"12345678901234\", valve: true}, {id: flat-05, bus: a, address: \"12345678901235\"}]\n" +
		"buffer: {path: " + filepath.Join(dir, "buf.db") + "}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n"
	cfg, err := config.Parse(filepath.Join(dir, "t.yaml"), []byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	d := New(Options{Config: cfg, Version: "test", Log: NewLogger(logs, "debug", "json")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, func() bool { _, err := os.Stat(sock); return err == nil })

	as := func(uid uint32, method, path string) string {
		c := exec.Command(curl, "-s", "-X", method, "--unix-socket", sock, "http://x"+path)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: 65534}}
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("curl as %d %s %s: %v %s", uid, method, path, err, out)
		}
		return string(out)
	}
	if out := as(65534, "GET", "/v1/status"); !strings.Contains(out, `"gateway": "gw-test"`) {
		t.Fatalf("nobody's status: %s", out)
	}
	if out := as(65534, "POST", "/v1/valve?meter=flat-04&action=close&request=n1"); !strings.Contains(out, "forbidden") || !strings.Contains(out, "uid 65534") {
		t.Fatalf("nobody's valve: %s", out)
	}
	if out := as(65534, "POST", "/v1/read?meter=flat-04"); !strings.Contains(out, "forbidden") {
		t.Fatalf("nobody's read-now: %s", out)
	}
	// Root passes the check; the meter has no valve: true, so the gateway
	// refuses it itself, and the refusal names root as the sender.
	if out := as(0, "POST", "/v1/valve?meter=flat-05&action=close&request=r1"); strings.Contains(out, "forbidden") || !strings.Contains(out, "not enabled") {
		t.Fatalf("root refused: %s", out)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), `"sender":"socket uid=0 gid=65534"`) })
	if !strings.Contains(logs.String(), `"uid":65534`) || !strings.Contains(logs.String(), "control API: refused") {
		t.Errorf("the refusal is not logged with the caller:\n%s", logs.String())
	}
}
