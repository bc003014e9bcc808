package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"tidegate/drivers/link"
)

// TestScanAndReadOnAHeldPort: while a port is held (as `tidegate run`
// holds its buses), a scan or a stand-alone read of it exits 1 with a
// message naming the holder, instead of sending requests that collide
// with the holder's.
func TestScanAndReadOnAHeldPort(t *testing.T) {
	s := startScanSim(t)
	dev := s.Ports()["rtu"].Device
	l, err := link.Open(link.Config{Device: dev, Baud: 38400})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	comm, _ := os.ReadFile("/proc/self/comm")
	want := fmt.Sprintf("port %s is in use by %s (pid %d)", dev, strings.TrimSpace(string(comm)), os.Getpid())
	for _, args := range [][]string{
		{"scan", "--port", dev, "--protocol", "modbus", "--baud", "38400", "--to", "3"},
		{"read", "--port", dev, "--baud", "38400", "--address", "5", "--profile", "dynaflox-ultrad"},
	} {
		code, out, errOut := runCmd(t, "", args...)
		if code != exitFailure || !strings.Contains(errOut, want) {
			t.Errorf("%s on a held port: exit %d, stderr %q, stdout %q; want exit 1 and %q", args[0], code, errOut, out, want)
		}
	}
}
