package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tidegate/uplink/broker"
)

var (
	faultOnce sync.Once
	faultBin  string
	faultErr  error
)

// buildFaultBinary builds tidegate with -tags faultinject: the same
// binary, whose buffer fails calls at the rates of a file
// (cmd/tidegate/internal/daemon/faults_inject.go).
func buildFaultBinary(t *testing.T) string {
	t.Helper()
	faultOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tidegate-soak-bin-")
		if err != nil {
			faultErr = err
			return
		}
		faultBin = filepath.Join(dir, "tidegate")
		out, err := exec.Command("go", "build", "-tags", "faultinject", "-o", faultBin, "tidegate/cmd/tidegate").CombinedOutput()
		if err != nil {
			faultErr = fmt.Errorf("go build -tags faultinject: %v\n%s", err, out)
		}
	})
	if faultErr != nil {
		t.Fatal(faultErr)
	}
	return faultBin
}

// soakBroker is a real broker on a fixed port that the soak kills and
// starts again, with an in-process subscriber collecting every record id.
type soakBroker struct {
	addr string
	br   *broker.Broker

	mu       sync.Mutex
	seqs     map[uint64]int // record seq → times received
	evicted  [][2]uint64
	messages int
}

func (s *soakBroker) start(t *testing.T) {
	t.Helper()
	var err error
	for try := 0; try < 50; try++ {
		if s.br, err = broker.Start(s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = s.br.Addr()
	if err := s.br.Subscribe("soak/#", s.take); err != nil {
		t.Fatal(err)
	}
}

func (s *soakBroker) take(topic string, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages++
	switch {
	case strings.HasSuffix(topic, "/readings"):
		var b struct{ Batch []struct{ Seq uint64 } }
		if json.Unmarshal(p, &b) == nil {
			for _, r := range b.Batch {
				s.seqs[r.Seq]++
			}
		}
	case strings.HasSuffix(topic, "/events"):
		var e struct {
			Seq   uint64
			Type  string
			Attrs map[string]string
		}
		if json.Unmarshal(p, &e) == nil {
			s.seqs[e.Seq]++
			if e.Type == "buffer_evicted" {
				for _, r := range strings.Split(e.Attrs["ranges"], ",") {
					a, b, _ := strings.Cut(r, "-")
					from, _ := strconv.ParseUint(a, 10, 64)
					to, err := strconv.ParseUint(b, 10, 64)
					if err != nil {
						to = from
					}
					s.evicted = append(s.evicted, [2]uint64{from, to})
				}
			}
		}
	}
}

// The soak: a real `tidegate run` (built with -tags faultinject) polls
// metersim through a pty and sends to a real broker, while faults come
// every few seconds: failing appends, acks and reads in the buffer, the
// broker killed and started again, metersim stopped (the bus times out).
// At the end every record the buffer numbered was delivered or reported in
// a buffer_evicted range, and every part is running. 60 s of faults in
// make test, 30 min with TIDEGATE_LONG=1.
func TestSoakFaults(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	if testing.Short() {
		t.Skip("soak")
	}
	span := 60 * time.Second
	if os.Getenv("TIDEGATE_LONG") == "1" {
		span = 30 * time.Minute
	}
	tg := buildFaultBinary(t)
	bin := buildBinaries(t)
	dir := t.TempDir()
	ports := startMetersimProc(t, bin, dir)

	br := &soakBroker{addr: "127.0.0.1:0", seqs: map[uint64]int{}}
	br.start(t)
	defer func() { br.br.Close() }()

	faults := filepath.Join(dir, "faults")
	cfg := filepath.Join(dir, "tidegate.yaml")
	y := `gateway: {id: gw-soak}
log: {level: info, format: json}
api: {socket: ` + filepath.Join(dir, "api.sock") + `}
buses:
  - {name: rtu, protocol: modbus, device: ` + ports.dev + `, baud: 19200, timeout: 200ms}
meters:
  - {id: m1, bus: rtu, address: 1, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}
  - {id: m2, bus: rtu, address: 2, profile: tuf2000m, poll: {flow: 1s, totals: 1s}}
  - {id: m3, bus: rtu, address: 3, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}
  - {id: m4, bus: rtu, address: 4, profile: tuf2000m, poll: {flow: 1s, totals: 1s}}
filter: {enabled: false}
buffer: {path: ` + filepath.Join(dir, "buffer.db") + `, commit_latency: 100ms}
mqtt: {broker: "tcp://` + br.addr + `", topic_prefix: soak, batch: {max_count: 20, max_latency: 100ms},
  reconnect_jitter: 1s, connect_gap: 1s, reconnect_max: 4s, probe_interval: 300ms, restart_max: 2s, ack_timeout: 5s}
`
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(tg, "run", "--config", cfg), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "TIDEGATE_FAULTS_FILE="+faults)
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
			t.Logf("tidegate:\n%s", tailLines(p.out.String(), 60))
		}
	})
	socket := filepath.Join(dir, "api.sock")
	eventually(t, 20*time.Second, "tidegate up", func() bool { _, err := status(t, socket); return err == nil })

	var kills, stops, faultOn int
	end := time.Now().Add(span)
	for time.Now().Before(end) {
		switch rand.IntN(3) {
		case 0: // the broker dies and comes back
			br.br.Close()
			kills++
			time.Sleep(time.Duration(500+rand.IntN(2500)) * time.Millisecond)
			br.start(t)
		case 1: // the meters go silent: the bus times out
			ports.sim.cmd.Process.Signal(syscall.SIGSTOP)
			stops++
			time.Sleep(time.Duration(500+rand.IntN(2500)) * time.Millisecond)
			ports.sim.cmd.Process.Signal(syscall.SIGCONT)
		case 2: // the disk: failing appends, acks and reads for a while
			os.WriteFile(faults, []byte("append=0.5 ack=0.5 read=0.1"), 0o600)
			faultOn++
			time.Sleep(time.Duration(1000+rand.IntN(3000)) * time.Millisecond)
			os.WriteFile(faults, nil, 0o600)
		}
		time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
	}

	// Faults over: the box heals by itself.
	var st struct {
		Parts []struct {
			Name, State string
			Restarts    uint64
		}
		Buffer struct{ Depth uint64 }
		Broker struct{ Connected bool }
	}
	eventually(t, 60*time.Second, "every part running, the broker connected and the buffer drained", func() bool {
		s, err := status(t, socket)
		if err != nil {
			return false
		}
		b, _ := json.Marshal(s)
		json.Unmarshal(b, &st)
		for _, p := range st.Parts {
			if p.State != "running" {
				return false
			}
		}
		return len(st.Parts) >= 3 && st.Broker.Connected && st.Buffer.Depth == 0
	})
	if code := p.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}

	br.mu.Lock()
	defer br.mu.Unlock()
	var lo, hi uint64
	dups := 0
	for s, n := range br.seqs {
		if lo == 0 || s < lo {
			lo = s
		}
		hi = max(hi, s)
		dups += n - 1
	}
	covered := func(s uint64) bool {
		if br.seqs[s] > 0 {
			return true
		}
		for _, r := range br.evicted {
			if s >= r[0] && s <= r[1] {
				return true
			}
		}
		return false
	}
	var missing []uint64
	for s := lo; s <= hi && hi > 0; s++ {
		if !covered(s) {
			missing = append(missing, s)
		}
	}
	out := p.out.String()
	injected := strings.Count(out, `"msg":"fault injected"`)
	t.Logf("%s of faults: %d broker kills, %d metersim stops, %d disk-fault spells (%d calls failed); %d records %d..%d delivered (%d duplicates), %d evicted ranges, %d missing; parts %+v",
		span, kills, stops, faultOn, injected, len(br.seqs), lo, hi, dups, len(br.evicted), len(missing), st.Parts)
	if len(br.seqs) < 30 {
		t.Fatalf("only %d records delivered", len(br.seqs))
	}
	if len(missing) > 0 {
		t.Fatalf("%d records neither delivered nor reported evicted, e.g. %v", len(missing), missing[:min(10, len(missing))])
	}
	if injected == 0 || kills == 0 {
		t.Fatal("no faults injected")
	}
}

type simProc struct {
	dev string
	sim *proc
}

func startMetersimProc(t *testing.T, bin, dir string) simProc {
	t.Helper()
	simCfg := filepath.Join(dir, "sim.yaml")
	profiles, _ := filepath.Abs("../../configs/profiles")
	if err := os.WriteFile(simCfg, []byte("speed: 60\nprofiles: "+profiles+`
buses:
  - name: rtu
    protocol: modbus
    baud: 19200
    turnaround: 3ms
    meters:
      - {id: m1, address: 1, profile: dynaflox-ultrad, water: {profile: flat, persons: 4}}
      - {id: m2, address: 2, profile: tuf2000m, water: {profile: flat}}
      - {id: m3, address: 3, profile: dynaflox-ultrad, water: {profile: flat, persons: 2}}
      - {id: m4, address: 4, profile: tuf2000m, water: {profile: flat}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	portsFile := filepath.Join(dir, "ports.json")
	sim := startProc(t, filepath.Join(bin, "metersim"), "--config", simCfg, "--ports", portsFile)
	var ports map[string]struct{ Device string }
	eventually(t, 10*time.Second, "metersim writes its ports", func() bool {
		data, err := os.ReadFile(portsFile)
		return err == nil && json.Unmarshal(data, &ports) == nil && len(ports) > 0
	})
	return simProc{dev: ports["rtu"].Device, sim: sim}
}
