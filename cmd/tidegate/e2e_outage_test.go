package main

import (
	"encoding/json"
	"fmt"
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

// centralService is the test's stand-in for the utility's profiling service:
// it stores every record by id and, in application-ack mode, publishes the
// highest seq up to which it holds everything.
type centralService struct {
	mu     sync.Mutex
	got    map[uint64]int // seq → copies received
	acked  uint64
	client paho.Client
}

func (s *centralService) onMessage(_ paho.Client, m paho.Message) {
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
	s.mu.Lock()
	// The birth message says where the gateway's sequence starts (a fresh
	// buffer numbers from the clock): contiguity counts from there.
	if base, ok := one["seq_base"].(float64); ok && one["state"] == "online" && s.acked < uint64(base) {
		s.acked = uint64(base)
	}
	for _, r := range doc.Batch {
		id, _ := r["id"].(string)
		seq, err := strconv.ParseUint(strings.TrimPrefix(id, "gw-e2e:"), 10, 64)
		if err == nil {
			s.got[seq]++
		}
	}
	for s.got[s.acked+1] > 0 {
		s.acked++
	}
	s.mu.Unlock()
}

// ackLoop publishes the ack every 100 ms. QoS 0 and repeated rather than
// QoS 1 once: paho's resume of stored QoS 1 publishes after a reconnect
// races with its writer (seen under -race), and a repeated ack is idempotent.
func (s *centralService) ackLoop(stop <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		ack := s.acked
		s.mu.Unlock()
		if ack > 0 && s.client.IsConnectionOpen() {
			s.client.Publish("e2e/v1/gw-e2e/ack", 0, false, fmt.Sprintf(`{"seq": %d}`, ack))
		}
	}
}

func (s *centralService) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.got) }

// TestE2EBrokerOutage: metersim → tidegate (drivers → filter → buffer →
// uplink, application acks) → Debian's mosquitto → a central service. The
// broker is SIGKILLed for a while and restarted; every record the buffer
// assigned reaches the service, and the buffer ends empty.
func TestE2EBrokerOutage(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	mq := startMosquittoProc(t)
	broker := mq.addr
	dir := t.TempDir()

	svc := &centralService{got: map[uint64]int{}}
	opts := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("central").SetAutoReconnect(true).
		SetConnectRetry(true).SetMaxReconnectInterval(200 * time.Millisecond).SetOrderMatters(false)
	opts.SetOnConnectHandler(func(c paho.Client) { c.Subscribe("e2e/v1/+/+", 1, svc.onMessage) })
	svc.client = paho.NewClient(opts)
	if tok := svc.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("central service: %v", tok.Error())
	}
	defer svc.client.Disconnect(100)
	stopAcks := make(chan struct{})
	defer close(stopAcks)
	go svc.ackLoop(stopAcks)

	ports := startMetersim(t, bin, dir, `buses:
  - name: rtu
    protocol: modbus
    baud: 38400
    turnaround: 2ms
    meters:
      - {id: m1, address: 1, profile: dynaflox-ultrad, water: {profile: flat, persons: 4, use_scale: 5}}
      - {id: m2, address: 2, profile: tuf2000m, water: {profile: vacant, surges: {per_day: 300}}}
`)
	cfg := filepath.Join(dir, "tidegate.yaml")
	buses := "  - {name: rtu, protocol: modbus, device: " + ports["rtu"] + ", baud: 38400, timeout: 200ms}\n"
	meters := "  - {id: m1, bus: rtu, address: 1, profile: dynaflox-ultrad, poll: {flow: 1s, totals: 1s}}\n" +
		"  - {id: m2, bus: rtu, address: 2, profile: tuf2000m, poll: {flow: 1s, totals: 1s}}"
	text := strings.Replace(e2eConfig(dir, broker, buses, meters), "topic_prefix: e2e,", "topic_prefix: e2e, ack: application,", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	eventually(t, 20*time.Second, "records at the service", func() bool { return svc.count() >= 6 })

	mq.kill() // the broker dies; tidegate keeps polling into its buffer
	time.Sleep(3 * time.Second)
	before := svc.count()
	mq.start(t)
	eventually(t, 30*time.Second, "the outage's records arrive", func() bool { return svc.count() >= before+8 })

	if code := tg.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
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
	svc.mu.Lock()
	defer svc.mu.Unlock()
	var missing []uint64
	dups := 0
	for seq := st.SeqBase + 1; seq <= st.LastSeq; seq++ {
		if svc.got[seq] == 0 {
			missing = append(missing, seq)
		}
		dups += max(svc.got[seq]-1, 0)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d records never reached the service: %v", len(missing), st.LastSeq-st.SeqBase, missing)
	}
	if st.Depth != 0 {
		t.Errorf("%d records left in the buffer after a clean stop with the service acking", st.Depth)
	}
	t.Logf("%d records through a %s broker outage; %d duplicates (dropped by id); the service acked up to %d", st.LastSeq-st.SeqBase, "3 s", dups, svc.acked)
}
