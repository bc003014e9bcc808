package drivers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
)

// wireSpeedSim: 32 meters of 17 registers (FC03 0-16: an 8-byte request and
// a 39-byte answer) on one 9600 8N1 bus with a 5 ms turnaround, reachable
// through a pty and a TCP converter, as in issue 17's measurements.
func wireSpeedSim(b testing.TB) (*remoteSim, []MeterConfig) {
	var sb strings.Builder
	sb.WriteString("profiles: profiles\nbuses:\n  - name: a\n    protocol: modbus\n    baud: 9600\n    turnaround: 5ms\n    tcp: 127.0.0.1:0\n    meters:\n")
	var meters []MeterConfig
	for i := 1; i <= 32; i++ {
		fmt.Fprintf(&sb, "      - {id: m%d, address: %d, profile: bench17}\n", i, i)
		meters = append(meters, MeterConfig{ID: fmt.Sprintf("m%d", i), Address: i, Profile: "bench17", Interval: time.Millisecond})
	}
	return startRemoteSim(b, sb.String()), meters
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func childCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// wireSpeed is one measured run: good answers, wall time, and the
// master's CPU (this process's, the simulator runs in another; or a peer's).
type wireSpeed struct {
	polls float64
	el    time.Duration
	cpu   time.Duration
}

func (w wireSpeed) rate() float64 { return w.polls / w.el.Seconds() }

// Wire time of one poll, from the frames exchanged: request and answer at
// 10 bits a character, the meter's turnaround, and the 3.5-character
// silence the master keeps before its next request (the limit).
// The simulator frames an FC03 request by its length, as libmodbus and
// meter firmware do, so it adds no silence of its own.
const (
	wsChar  = 10.0 / 9600
	wsPoll  = (8+39)*wsChar + 0.005 + 3.5*wsChar
	wsLimit = 1 / wsPoll
)

func benchSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("TIDEGATE_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 10 * time.Second
}

// runTidegate polls the 32 meters as fast as the scheduler allows through
// lc for d after a warm-up, counting the simulator's replies.
func runTidegate(b *testing.B, sim *remoteSim, meters []MeterConfig, lc link.Config, d time.Duration) wireSpeed {
	bus, err := NewBus(BusConfig{Name: "a", Protocol: ProtoModbus, Link: lc, Timeout: 300 * time.Millisecond}, meters, loadProfiles(b), discard{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bus.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitForB(b, func() bool { return bus.Stats().PollsOK > 32 })
	r0, c0, t0, ok0 := sim.replies(), cpuTime(), time.Now(), bus.Stats().PollsOK
	time.Sleep(d)
	r1, c1, t1, ok1 := sim.replies(), cpuTime(), time.Now(), bus.Stats().PollsOK
	if ok1-ok0 > r1-r0 || ok1-ok0 < (r1-r0)*9/10 {
		b.Errorf("%d good polls, the simulator sent %d replies", ok1-ok0, r1-r0)
	}
	return wireSpeed{polls: float64(ok1 - ok0), el: t1.Sub(t0), cpu: c1 - c0}
}

// runMbpoll runs mbpoll (libmodbus) against the same pty: continuously with
// its shortest poll period, or one-shot, one process per round of the 32
// meters, in a loop. Good answers are the simulator's replies.
func runMbpoll(b *testing.B, sim *remoteSim, dev string, oneShot bool, d time.Duration) wireSpeed {
	args := []string{"-m", "rtu", "-b", "9600", "-P", "none", "-d", "8", "-s", "1", "-a", "1:32", "-0", "-r", "0", "-c", "17", "-t", "4", "-o", "0.3"}
	r0, t0 := sim.replies(), time.Now()
	var child time.Duration
	if oneShot {
		for time.Since(t0) < d {
			cmd := exec.Command("mbpoll", append(args, "-1", dev)...)
			if err := cmd.Run(); err != nil {
				b.Logf("mbpoll -1: %v", err)
			}
			child += childCPU(cmd.ProcessState)
		}
	} else {
		cmd := exec.Command("mbpoll", append(args, "-l", "10", dev)...)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(d)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		child = childCPU(cmd.ProcessState)
	}
	r1, t1 := sim.replies(), time.Now()
	return wireSpeed{polls: float64(r1 - r0), el: t1.Sub(t0), cpu: child}
}

type discard struct{}

func (discard) Reading(reading.Reading, reading.Kind) {}
func (discard) Event(reading.Event)                   {}

// BenchmarkWireSpeed measures what a user meets on issue 17's bus (32
// meters, 9600 8N1, FC03 registers 0-16) through metersim's real pty and
// TCP converter: polls per second, their ratio to the wire-time limit
// computed from the frames exchanged, and CPU per poll. The simulator runs
// in a process of its own, so this process's CPU is the master's. mbpoll,
// when installed, runs against the same pty in the same run.
// TIDEGATE_BENCH_SECONDS sets each window (default 10 s).
func BenchmarkWireSpeed(b *testing.B) {
	d := benchSeconds()
	for range b.N {
		sim, meters := wireSpeedSim(b)
		port := sim.port
		if _, err := exec.LookPath("mbpoll"); err == nil {
			for _, oneShot := range []bool{false, true} {
				w := runMbpoll(b, sim, port.Device, oneShot, d)
				name := map[bool]string{false: "mbpoll -l 10", true: "mbpoll -1 loop"}[oneShot]
				b.Logf("%-16s %6.2f polls/s  %.3f of the limit  %.2f ms CPU/poll", name, w.rate(), w.rate()/wsLimit, 1e3*w.cpu.Seconds()/w.polls)
				key := map[bool]string{false: "mbpoll", true: "mbpoll1"}[oneShot]
				b.ReportMetric(w.rate(), key+"-polls/s")
				b.ReportMetric(1e3*w.cpu.Seconds()/w.polls, key+"-cpu-ms/poll")
			}
		} else {
			b.Log("mbpoll not installed: no peer measured")
		}
		for _, via := range []string{"pty", "tcp"} {
			lc := link.Config{Device: port.Device, Baud: 9600}
			if via == "tcp" {
				lc = link.Config{TCP: port.TCP, Baud: 9600}
			}
			w := runTidegate(b, sim, meters, lc, d)
			cpu := w.cpu.Seconds() / w.polls
			b.Logf("tidegate %-7s %6.2f polls/s  %.3f of the limit  %.2f ms CPU/poll", via, w.rate(), w.rate()/wsLimit, 1e3*cpu)
			b.ReportMetric(w.rate(), via+"-polls/s")
			b.ReportMetric(w.rate()/wsLimit, via+"-ratio-to-wire-limit")
			b.ReportMetric(1e3*cpu, via+"-cpu-ms/poll")
		}
		b.Logf("wire-time limit %.2f polls/s (%.1f ms a poll)", wsLimit, 1e3*wsPoll)
	}
}
