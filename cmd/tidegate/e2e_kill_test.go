package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// mosquittoProc is Debian's mosquitto on a free loopback port, as a real
// process the test can SIGKILL and start again on the same port.
type mosquittoProc struct {
	addr, bin, conf string
	proc            *proc
}

// startMosquittoProc starts it; without mosquitto the test is skipped
// (failed on CI, which installs it).
func startMosquittoProc(t *testing.T) *mosquittoProc {
	t.Helper()
	bin, err := findMosquitto()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n", port)
	if os.Geteuid() == 0 {
		conf = "user root\n" + conf
	}
	m := &mosquittoProc{addr: "127.0.0.1:" + strconv.Itoa(port), bin: bin, conf: filepath.Join(t.TempDir(), "mosquitto.conf")}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start(t)
	return m
}

func (m *mosquittoProc) start(t *testing.T) {
	t.Helper()
	m.proc = startProc(t, m.bin, "-c", m.conf)
	eventually(t, 5*time.Second, "mosquitto listens", func() bool {
		c, err := net.Dial("tcp", m.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// kill SIGKILLs the broker and waits until it is gone.
func (m *mosquittoProc) kill() {
	_ = m.proc.cmd.Process.Signal(syscall.SIGKILL)
	<-m.proc.done
}

func findMosquitto() (string, error) {
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/bin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mosquitto not installed: apt-get install mosquitto")
}

// TestE2EKillMidDrain: metersim → tidegate → mosquitto → a subscriber.
// tidegate is SIGKILLed while it drains, then restarted: every buffered
// record reaches the subscriber, and a record received twice carries the
// same id and the same values (the receiver drops it by id).
func TestE2EKillMidDrain(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	broker := startMosquittoProc(t).addr

	var mu sync.Mutex
	got := map[string][]string{} // id → meter|gateway_time|forward of each copy received
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("e2e-sub").SetOrderMatters(false))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("e2e/v1/+/+", 1, func(_ paho.Client, m paho.Message) {
		// readings come in batches, events one a message
		var doc struct {
			Batch []map[string]any `json:"batch"`
		}
		var one map[string]any
		if json.Unmarshal(m.Payload(), &doc) != nil || json.Unmarshal(m.Payload(), &one) != nil {
			return
		}
		if len(doc.Batch) == 0 && one["id"] != nil {
			doc.Batch = append(doc.Batch, one)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range doc.Batch {
			id, _ := r["id"].(string)
			got[id] = append(got[id], fmt.Sprint(r["meter"], "|", r["gateway_time"], "|", r["forward_m3"]))
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	dir := t.TempDir()
	ports := startMetersim(t, bin, dir, `buses:
  - name: rtu
    protocol: modbus
    baud: 38400
    turnaround: 2ms
    meters:
      - {id: m1, address: 1, profile: dynaflox-ultrad, water: {profile: flat, persons: 4, use_scale: 5}}
      - {id: m2, address: 2, profile: dynaflox-ultrad, water: {profile: shop}}
      - {id: m3, address: 3, profile: tuf2000m, water: {profile: flat}}
`)
	cfg := filepath.Join(dir, "tidegate.yaml")
	buses := "  - {name: rtu, protocol: modbus, device: " + ports["rtu"] + ", baud: 38400, timeout: 200ms}\n"
	meters := "  - {id: m1, bus: rtu, address: 1, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: m2, bus: rtu, address: 2, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: m3, bus: rtu, address: 3, profile: tuf2000m, poll: {flow: 1s, totals: 1s}}"
	if err := os.WriteFile(cfg, []byte(e2eConfig(dir, broker, buses, meters)), 0o600); err != nil {
		t.Fatal(err)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	tg := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	eventually(t, 20*time.Second, "records at the broker", func() bool { return count() >= 10 })
	_ = tg.cmd.Process.Signal(syscall.SIGKILL)
	<-tg.done
	before := count()
	tg = startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	eventually(t, 20*time.Second, "records after the restart", func() bool { return count() >= before+10 })
	if code := tg.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	code, out, errOut := runCmd(t, "", "buffer", "stats", "--path", filepath.Join(dir, "buffer.db"), "--json")
	if code != 0 {
		t.Fatalf("buffer stats: %s%s", out, errOut)
	}
	// A fresh buffer numbers from the clock: its seqs are seq_base+1 on.
	var st struct {
		Depth   uint64 `json:"depth"`
		LastSeq uint64 `json:"last_seq"`
		SeqBase uint64 `json:"seq_base"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the subscriber's last messages
	mu.Lock()
	defer mu.Unlock()
	missing, dups := 0, 0
	for seq := st.SeqBase + 1; seq <= st.LastSeq; seq++ {
		copies := got["gw-e2e:"+strconv.FormatUint(seq, 10)]
		if len(copies) == 0 {
			missing++
			t.Errorf("seq %d never reached the subscriber", seq)
			continue
		}
		for _, c := range copies[1:] {
			dups++
			if c != copies[0] {
				t.Errorf("seq %d received twice with different values: %q vs %q", seq, copies[0], c)
			}
		}
	}
	for id := range got {
		seq, err := strconv.ParseUint(strings.TrimPrefix(id, "gw-e2e:"), 10, 64)
		if err != nil || seq > st.LastSeq || seq <= st.SeqBase {
			t.Errorf("id %q is not one of the buffer's %d..%d", id, st.SeqBase+1, st.LastSeq)
		}
	}
	if st.Depth != 0 {
		t.Errorf("%d records still in the buffer after a clean stop", missing)
	}
	t.Logf("%d records over a SIGKILL and restart, %d missing; %d duplicates, all with the same values; buffer seq %d..%d", len(got), missing, dups, st.SeqBase+1, st.LastSeq)
}
