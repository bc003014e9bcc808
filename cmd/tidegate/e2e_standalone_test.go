package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tidegate binary alone, copied into an empty folder (as `install -m 0755
// tidegate /usr/local/bin/` leaves it), reads a meter by profile name and
// lists its profiles: they are built in.
func TestLoneBinaryReadsByProfileName(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	bin := buildBinaries(t)
	dir := t.TempDir()
	ports := startMetersim(t, bin, dir, `buses:
  - name: rtu
    protocol: modbus
    baud: 9600
    meters:
      - {id: m3, address: 3, profile: dynaflox-ultrad, water: {profile: flat}}
`)
	lone := t.TempDir()
	data, err := os.ReadFile(filepath.Join(bin, "tidegate"))
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(lone, "tidegate")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(exe, args...)
		cmd.Dir = lone
		cmd.Env = append(os.Environ(), "TIDEGATE_CONFIG="+filepath.Join(lone, "none.yaml"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("read", "--port", ports["rtu"], "--address", "3", "--profile", "dynaflox-ultrad")
	if err != nil || !strings.Contains(out, "quality") || !strings.Contains(out, "forward") {
		t.Fatalf("lone binary read by profile name: %v\n%s", err, out)
	}
	out, err = run("profiles")
	if err != nil || !strings.Contains(out, "dynaflox-ultrad") || !strings.Contains(out, "built-in:dynaflox-ultrad.yaml") {
		t.Fatalf("tidegate profiles: %v\n%s", err, out)
	}
	out, err = run("read", "--port", ports["rtu"], "--address", "3", "--profile", "dynaflox-ultra")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(out, "nearest: dynaflox-ultrad") {
		t.Errorf("a profile typo: %v\n%s", err, out)
	}
}
