package mbus

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/simulator"
)

// benchSimEnv makes the test binary a metersim process (see TestMain): the
// benchmarks run the simulator apart, so that the CPU they measure is the
// master's alone.
const benchSimEnv = "TIDEGATE_MBUS_BENCH_SIM"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(benchSimEnv); cfg != "" {
		os.Exit(runBenchSim(cfg))
	}
	os.Exit(m.Run())
}

// runBenchSim runs the simulator of the config file, prints its ports as
// one JSON line and answers until its stdin closes.
func runBenchSim(file string) int {
	text, err := os.ReadFile(file)
	if err == nil {
		var cfg *simulator.Config
		if cfg, err = simulator.ParseConfig(file, text); err == nil {
			var sim *simulator.Sim
			if sim, err = simulator.Start(context.Background(), cfg, nil); err == nil {
				defer sim.Close()
				if err = json.NewEncoder(os.Stdout).Encode(sim.Ports()); err == nil {
					_, _ = io.Copy(io.Discard, os.Stdin)
					return 0
				}
			}
		}
	}
	fmt.Fprintln(os.Stderr, "bench simulator:", err)
	return 1
}

// startSimProcess runs metersim with config text in a process of its own
// and returns its ports.
func startSimProcess(b *testing.B, text string) map[string]simulator.PortInfo {
	file := filepath.Join(b.TempDir(), "sim.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchSimEnv+"="+file)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		b.Fatalf("simulator: %v", err)
	}
	var ports map[string]simulator.PortInfo
	if err := json.Unmarshal(line, &ports); err != nil {
		b.Fatalf("simulator ports %q: %v", line, err)
	}
	return ports
}

// countingLine counts what crosses the line, for the wire-time limit.
type countingLine struct {
	Line
	requests, answered, sent, received int
	pending                            bool // a request not yet answered
}

func (l *countingLine) WriteUntil(ctx context.Context, b []byte, deadline time.Time) error {
	l.requests++
	l.sent += len(b)
	l.pending = true
	return l.Line.WriteUntil(ctx, b, deadline)
}

func (l *countingLine) ReadSome(buf []byte, deadline time.Time) (int, error) {
	n, err := l.Line.ReadSome(buf, deadline)
	if n > 0 && l.pending {
		l.answered++
		l.pending = false
	}
	l.received += n
	return n, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMBusBus16 polls 16 single-telegram metersim meters (Ultrimis)
// on one 2400-baud 8E1 pty bus with a 30 ms meter turnaround, as the
// daemon's client does, one reading per iteration: by primary address, and
// by secondary address (a selection before every read), and by primary
// address through the bus's TCP converter. It reports
// readings per second, the ratio to the wire-time limit of the frames
// actually exchanged (every byte at 11 bits, the meter's turnaround per
// answer and the standard's 11 bit times of idle before every request),
// and the master's CPU per reading (the simulator runs in a process of its
// own). go test -run XXX -bench MBusBus16 -benchtime 160x
func BenchmarkMBusBus16(b *testing.B) {
	const turnaround = 30 * time.Millisecond
	var sb strings.Builder
	fmt.Fprintf(&sb, "seed: 3\nbuses:\n  - name: mb\n    protocol: mbus\n    baud: 2400\n    turnaround: %v\n    tcp: 127.0.0.1:0\n    meters:\n", turnaround)
	for i := 1; i <= 16; i++ {
		fmt.Fprintf(&sb, "      - {id: m%d, address: %d, model: ultrimis, secondary: \"%08d\", water: {profile: flat}}\n", i, i, 31415900+i)
	}
	pi := startSimProcess(b, sb.String())["mb"]
	for _, how := range []string{"primary", "secondary", "primary-tcp"} {
		b.Run(how, func(b *testing.B) {
			cfg := link.Config{Device: pi.Device, Baud: pi.Baud, Parity: pi.Parity}
			if how == "primary-tcp" { // the same bus through its TCP converter
				cfg.Device, cfg.TCP = "", pi.TCP
			}
			meter := func(i int) Meter { return Meter{ID: fmt.Sprintf("m%d", i%16+1), Address: byte(i%16 + 1)} }
			if how == "secondary" {
				meter = func(i int) Meter {
					return Meter{ID: fmt.Sprintf("m%d", i%16+1), Secondary: fmt.Sprintf("%08d", 31415900+i%16+1)}
				}
			}
			benchBus(b, cfg, turnaround, meter)
		})
	}
}

func benchBus(b *testing.B, cfg link.Config, turnaround time.Duration, meter func(int) Meter) {
	l, err := link.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	cl := &countingLine{Line: l}
	c := NewClient(cl, Options{})
	ctx := context.Background()
	for i := range 16 { // warm-up: the first contact with each meter adds its SND_NKE
		var err error
		for range 3 { // a loaded machine may starve the simulator past the stall time
			if _, err = c.Poll(ctx, meter(i), false); err == nil {
				break
			}
		}
		if err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}
	*cl = countingLine{Line: l}
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	bad := 0
	var firstErr error
	for i := range b.N {
		if _, err := c.Poll(ctx, meter(i), false); err != nil {
			bad++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	el := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	// A failed reading is what a user meets too: counted, and fatal only
	// when it is no longer the odd stall of a simulator starved by load.
	if bad > b.N/16 {
		b.Fatalf("%d of %d readings failed, the first: %v", bad, b.N, firstErr)
	} else if bad > 0 {
		b.Logf("%d of %d readings failed, the first: %v", bad, b.N, firstErr)
	}
	b.ReportMetric(float64(bad), "failed")
	char := l.Config().CharTime()
	wire := time.Duration(cl.sent+cl.received)*char + time.Duration(cl.answered)*turnaround + time.Duration(cl.requests)*Idle(l.Config())
	rate := float64(b.N) / el.Seconds()
	limit := float64(b.N) / wire.Seconds()
	b.ReportMetric(rate, "readings/s")
	b.ReportMetric(limit, "wire_limit/s")
	b.ReportMetric(rate/limit, "ratio_to_wire")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu_ms/reading")
	b.ReportMetric(float64(cl.sent+cl.received)/float64(b.N), "bytes/reading")
}
