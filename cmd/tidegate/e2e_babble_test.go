package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EBabble (issue 22): on each protocol in turn, a real tidegate beside
// metersim with a 10 MB/s babbler on a bus through a TCP converter, a 300
// B/s babbler on a pty bus and a healthy pty bus. The daemon's VmRSS stays
// under 40 MB, the healthy meter is polled on schedule, `tidegate read` of
// a babbling bus's meter answers within 10 s with the line's fault, both
// babbling buses show line_noise in status and their meters offline, a
// reload during the babble replaces the pty bus (the new one opens the
// port: the old one had closed it), and SIGTERM exits 0 within 5 s. Before,
// M-Bus grew to hundreds of MB, froze its bus and answered a read with
// "busy" after 30 s.
func TestE2EBabble(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	for _, proto := range []string{"mbus", "cjt188", "modbus"} {
		t.Run(proto, func(t *testing.T) { testE2EBabble(t, proto) })
	}
}

func testE2EBabble(t *testing.T, proto string) {
	bin := buildBinaries(t)
	br := startTestBroker(t)
	dir := t.TempDir()
	simMeter := map[string]string{
		"mbus":   `{id: %s, address: 1, model: flowiq, secondary: "11223344"}`,
		"cjt188": `{id: %s, address: "78330011223344"}`,
		"modbus": `{id: %s, address: 1, profile: dynaflox-ultrad}`,
	}[proto]
	meter := map[string]string{
		"mbus":   `{id: %s, bus: %s, secondary: "11223344", poll: {flow: 1s, totals: 1s}}`, // selected: the repro
		"cjt188": `{id: %s, bus: %s, address: "78330011223344", poll: {flow: 1s, totals: 1s}}`,
		"modbus": `{id: %s, bus: %s, address: 1, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}`,
	}[proto]
	// No profiles: in the sim config: metersim takes the built-in ones.
	sim := fmt.Sprintf(`buses:
  - {name: tb, protocol: %[1]s, baud: 9600, pty: false, tcp: "127.0.0.1:0", faults: {babble: {rate: 10485760, pattern: "A5"}}, meters: [%[2]s]}
  - {name: pb, protocol: %[1]s, baud: 9600, faults: {babble: {rate: 300}}, meters: [%[3]s]}
  - {name: ok, protocol: %[1]s, baud: 9600, turnaround: 5ms, meters: [%[4]s]}
`, proto, fmt.Sprintf(simMeter, "nt"), fmt.Sprintf(simMeter, "np"), fmt.Sprintf(simMeter, "good"))
	simCfg := filepath.Join(dir, "sim.yaml")
	if err := os.WriteFile(simCfg, []byte(sim), 0o600); err != nil {
		t.Fatal(err)
	}
	portsFile := filepath.Join(dir, "ports.json")
	startProc(t, filepath.Join(bin, "metersim"), "--config", simCfg, "--ports", portsFile)
	var ports map[string]struct{ Device, TCP string }
	eventually(t, 10*time.Second, "metersim writes its ports", func() bool {
		data, err := os.ReadFile(portsFile)
		return err == nil && json.Unmarshal(data, &ports) == nil && len(ports) == 3
	})
	writeCfg := func(pbTimeout string) string {
		buses := fmt.Sprintf("  - {name: tb, protocol: %s, baud: 9600, tcp: %q}\n  - {name: pb, protocol: %s, baud: 9600, device: %s, timeout: %s}\n  - {name: ok, protocol: %s, baud: 9600, device: %s, timeout: 1s}\n",
			proto, ports["tb"].TCP, proto, ports["pb"].Device, pbTimeout, proto, ports["ok"].Device)
		meters := "  - " + fmt.Sprintf(meter, "nt", "tb") + "\n  - " + fmt.Sprintf(meter, "np", "pb") + "\n  - " + fmt.Sprintf(meter, "good", "ok") + "\n"
		cfg := filepath.Join(dir, "tidegate.yaml")
		if err := os.WriteFile(cfg, []byte(e2eConfig(dir, br.addr, buses, meters)), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := writeCfg("500ms")
	tg := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	socket := filepath.Join(dir, "api.sock")

	// VmRSS sampled all along.
	stopRSS := make(chan struct{})
	rssDone := make(chan int)
	go func() {
		peak := 0
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, vmRSSkB(tg.cmd.Process.Pid))
			select {
			case <-stopRSS:
				rssDone <- peak
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stopRSS:
		default:
			close(stopRSS)
			<-rssDone
		}
	}()

	var last any
	defer func() {
		if t.Failed() {
			t.Logf("last status: %+v", last)
		}
	}()
	// Normally seconds; a babbler paused by a loaded machine lets the line
	// go quiet, and its meter then backs off as a failing one before the
	// next try hears the noise.
	eventually(t, 60*time.Second, "both babbling buses in line_noise, their meters offline, the healthy one online", func() bool {
		s, err := status(t, socket)
		if err != nil {
			return false
		}
		last = s
		noisy := 0
		for _, b := range s.Buses {
			if (b.Name == "tb" || b.Name == "pb") && b.State == "line_noise" && strings.Contains(b.Error, "line noise") {
				noisy++
			}
		}
		states := map[string]string{}
		for _, m := range s.Meters {
			states[m.ID] = m.State
		}
		return noisy == 2 && states["nt"] == "offline" && states["np"] == "offline" && states["good"] == "online"
	})

	// tidegate read of a babbling bus's meter: the line's fault, in time.
	for _, m := range []string{"nt", "np"} {
		t0 := time.Now()
		out, err := exec.Command(filepath.Join(bin, "tidegate"), "read", "--socket", socket, m).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "line noise") || time.Since(t0) > 10*time.Second {
			t.Fatalf("read %s after %v: %v: %s", m, time.Since(t0), err, out)
		}
	}

	// The healthy meter stays on its 1 s schedule: its last reading is
	// never more than a poll or two old (one sample may catch a poll a
	// loaded machine delayed).
	late := 0
	for range 5 {
		time.Sleep(time.Second)
		s, err := status(t, socket)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Meters {
			if m.ID == "good" && (m.Last == nil || m.Last.GatewayTime == nil || time.Since(*m.Last.GatewayTime) > 3*time.Second) {
				late++
				t.Logf("healthy meter late: %+v", m.Last)
			}
		}
	}
	if late > 1 {
		t.Fatalf("healthy meter late at %d of 5 samples", late)
	}

	// A reload during the babble replaces the pty bus: the new one opens
	// the port, so the old one closed it, and reports the noise itself.
	before := strings.Count(tg.out.String(), `"bus":"pb"`)
	writeCfg("700ms")
	_ = tg.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the reload is applied and the new pty bus hears the noise", func() bool {
		s, err := status(t, socket)
		if err != nil || s.Reloads != 1 || !strings.Contains(s.LastReload, "applied") {
			return false
		}
		logs := tg.out.String()
		i := strings.LastIndex(logs, `"msg":"config reloaded"`)
		if i < 0 {
			i = strings.LastIndex(logs, "reload")
		}
		return strings.Count(logs, `"bus":"pb"`) > before && strings.Contains(logs[i:], "line noise")
	})
	if strings.Contains(tg.out.String(), "is in use") {
		t.Fatalf("the new bus found the port still held:\n%s", tailLines(tg.out.String(), 20))
	}

	t0 := time.Now()
	if code := tg.stop(t, syscall.SIGTERM, 5*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	t.Logf("SIGTERM took %v", time.Since(t0))
	close(stopRSS)
	if peak := <-rssDone; peak == 0 || peak > 40<<10 {
		t.Fatalf("VmRSS peak %d kB", peak)
	} else {
		t.Logf("VmRSS peak %d kB", peak)
	}
}

// vmRSSkB is a process's resident set in kB, 0 when it cannot be read.
func vmRSSkB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}
