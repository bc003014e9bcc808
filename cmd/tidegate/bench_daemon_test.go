package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tidegate/simulator"
)

// BenchmarkDaemonWireSpeed measures what a user meets on issue 17's buses
// with the whole daemon in the loop: `tidegate run` (filter, bbolt buffer,
// MQTT uplink to an embedded broker) as a process of its own against
// metersim as another, through metersim's pty and its TCP converter. The
// drivers' own benchmarks (BenchmarkWireSpeed, BenchmarkMBusBus16) drive a
// bus in-process; this one adds what the daemon spends per reading. Good
// answers are the daemon's tidegate_bus_answers_total; CPU is the daemon
// process's utime+stime from /proc over the window. TIDEGATE_BENCH_SECONDS
// sets each window (default 10 s).
func BenchmarkDaemonWireSpeed(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("needs /proc for the daemon's CPU time")
	}
	profiles, err := filepath.Abs("../../drivers/testdata/profiles")
	if err != nil {
		b.Fatal(err)
	}
	d := daemonBenchSeconds()
	bin := buildBinaries(b)
	for range b.N {
		// Modbus: 32 meters, 9600 8N1, 5 ms turnaround, FC03 registers
		// 0-16 (an 8-byte request, a 39-byte answer). The limit counts
		// request, answer, turnaround and the master's 3.5 characters of
		// silence (issue 17's 57.6 ms); metersim frames a request by its
		// length (adding no silence of its own), so simLimit is the limit.
		var sim strings.Builder
		fmt.Fprintf(&sim, "profiles: %s\nbuses:\n  - {name: rtu, protocol: modbus, baud: 9600, turnaround: 5ms, tcp: \"127.0.0.1:0\", meters: [", profiles)
		for i := 1; i <= 32; i++ {
			fmt.Fprintf(&sim, "{id: m%d, address: %d, profile: bench17}, ", i, i)
		}
		// M-Bus: 16 single-telegram meters (76-byte RSP_UD), 2400 8E1, 30 ms
		// turnaround; the limit counts REQ_UD2 and RSP_UD at 11 bits, the
		// turnaround and the standard's 11 bit times of idle per request.
		sim.WriteString("]}\n  - {name: mb, protocol: mbus, baud: 2400, parity: E, turnaround: 30ms, tcp: \"127.0.0.1:0\", meters: [")
		for i := 1; i <= 16; i++ {
			fmt.Fprintf(&sim, "{id: b%d, address: %d, model: ultrimis, secondary: \"%08d\"}, ", i, i, 31415900+i)
		}
		sim.WriteString("]}\n")
		ports := startDaemonBenchSim(b, bin, sim.String())
		char := 10.0 / 9600
		rtuPoll := (8+39)*char + 0.005 + 3.5*char
		mbusRead := (5+76)*11.0/2400 + 0.030 + 11.0/2400
		cases := []struct {
			name, proto, where string
			n                  int
			limit, simLimit    float64
		}{
			{"modbus-pty", "modbus", "device: " + ports["rtu"].Device, 32, 1 / rtuPoll, 1 / rtuPoll},
			{"modbus-tcp", "modbus", "tcp: " + ports["rtu"].TCP, 32, 1 / rtuPoll, 1 / rtuPoll},
			{"mbus-pty", "mbus", "device: " + ports["mb"].Device, 16, 1 / mbusRead, 1 / mbusRead},
		}
		for _, c := range cases {
			rate, cpu := runDaemonBench(b, bin, profiles, c.proto, c.where, c.n, d)
			b.Logf("tidegate run %-10s %6.2f polls/s  %.3f of the wire limit %.2f/s (%.3f of the simulator's %.2f/s)  %.2f ms CPU/poll",
				c.name, rate, rate/c.limit, c.limit, rate/c.simLimit, c.simLimit, 1e3*cpu)
			b.ReportMetric(rate, c.name+"-polls/s")
			b.ReportMetric(rate/c.limit, c.name+"-ratio-to-wire-limit")
			b.ReportMetric(1e3*cpu, c.name+"-cpu-ms/poll")
		}
	}
}

func daemonBenchSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("TIDEGATE_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 10 * time.Second
}

// startDaemonBenchSim runs metersim with the config text and returns its
// buses' ports from its ports file.
func startDaemonBenchSim(b *testing.B, bin, text string) map[string]simulator.PortInfo {
	dir := b.TempDir()
	cfg, portsFile := filepath.Join(dir, "sim.yaml"), filepath.Join(dir, "ports.json")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "metersim"), "--config", cfg, "--ports", portsFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var ports map[string]simulator.PortInfo
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(50 * time.Millisecond) {
		if data, err := os.ReadFile(portsFile); err == nil && json.Unmarshal(data, &ports) == nil {
			return ports
		}
	}
	b.Fatal("metersim wrote no ports file")
	return nil
}

// runDaemonBench runs `tidegate run` with one bus of n meters polled as
// fast as the line allows (every meter due every second, more than the
// line can carry), and returns good answers per second and CPU seconds per
// answer over d after a warm-up.
func runDaemonBench(b *testing.B, bin, profiles, proto, where string, n int, d time.Duration) (rate, cpu float64) {
	dir := b.TempDir()
	broker := startTestBroker(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	metrics := ln.Addr().String()
	ln.Close()
	var cfg strings.Builder
	baud, parity := 9600, "none"
	if proto == "mbus" {
		baud, parity = 2400, "even"
	}
	fmt.Fprintf(&cfg, "gateway: {id: bench}\nlog: {level: warn, format: json}\napi: {socket: %s, metrics: %q}\nprofile_dirs: [%s]\n",
		filepath.Join(dir, "api.sock"), metrics, profiles)
	fmt.Fprintf(&cfg, "buses:\n  - {name: a, protocol: %s, %s, baud: %d, parity: %s, retries: 0}\nmeters:\n", proto, where, baud, parity)
	for i := 1; i <= n; i++ {
		prof := ""
		if proto == "modbus" {
			prof = ", profile: bench17"
		}
		fmt.Fprintf(&cfg, "  - {id: m%d, bus: a, address: %d%s, poll: {flow: 1s, totals: 1s}}\n", i, i, prof)
	}
	fmt.Fprintf(&cfg, "buffer: {path: %s}\nmqtt: {broker: \"tcp://%s\", topic_prefix: bench, reconnect_jitter: off}\n", filepath.Join(dir, "buf.db"), broker.addr)
	file := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "tidegate"), "run", "--config", file)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	answers := func() float64 {
		resp, err := client.Get("http://" + metrics + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && strings.HasPrefix(f[0], "tidegate_bus_answers_total{") {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v
			}
		}
		return -1
	}
	for start := time.Now(); answers() < float64(2*n); time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > time.Minute {
			b.Fatalf("tidegate polled nothing in a minute:\n%s", tailLines(out.String(), 20))
		}
	}
	a0, c0, t0 := answers(), procCPU(b, cmd.Process.Pid), time.Now()
	time.Sleep(d)
	a1, c1, t1 := answers(), procCPU(b, cmd.Process.Pid), time.Now()
	if a1 <= a0 {
		b.Fatalf("no good answers in the window:\n%s", tailLines(out.String(), 20))
	}
	return (a1 - a0) / t1.Sub(t0).Seconds(), (c1 - c0).Seconds() / (a1 - a0)
}

// procCPU is a process's user+system time from /proc/PID/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux the daemon targets.
	return time.Duration(ut+st) * 10 * time.Millisecond
}
