package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"

	"tidegate/uplink/cmdauth/cmdauthtest"
)

// TestE2ESignedValve: Debian's mosquitto, metersim's CJ/T 188 valve meter
// and `tidegate run` as processes. A burst of alternating signed commands
// ends in the last one's state; retained, replayed (also after a restart),
// expired, not-yet-valid, wrong-aud, wrong-sub, unknown-kid, bad-signature
// and unsigned commands never move the valve and each gets a clear result;
// the valve event names operator and sender; a 100 MB publish on the
// command topic leaves the daemon small and publishing; /metrics on TCP
// carries no meter totals.
func TestE2ESignedValve(t *testing.T) {
	// Mostly waiting on its own processes: it runs beside the other long
	// end-to-end tests (.ci/unit gives the timing pass -parallel 4).
	t.Parallel()
	bin := buildBinaries(t)
	mq := startE2EMosquitto(t)
	dir := t.TempDir()
	ports := startMetersim(t, bin, dir, `buses:
  - name: cj
    protocol: cjt188
    baud: 9600
    turnaround: 5ms
    meters:
      - {id: cj-1, address: "78330011223344", valve: true, water: {profile: flat, persons: 4, use_scale: 20, leaks: [{rate_lh: 400}]}}
      - {id: cj-2, address: "78330011223345", valve: true, water: {profile: flat}}
`)
	k1, k2 := newE2ESigner(t, dir, "k1"), newE2ESigner(t, dir, "k2")
	metricsAddr := freeAddr(t)
	cfgText := `gateway: {id: gw-e2e}
log: {level: debug, format: json}
api: {socket: ` + filepath.Join(dir, "api.sock") + `, metrics: "` + metricsAddr + `"}
buses:
  - {name: cj, protocol: cjt188, device: ` + ports["cj"] + `, baud: 9600, timeout: 1s}
meters:
  - {id: cj-1, bus: cj, address: "78330011223344", valve: true, valve_min_interval: 1ms, poll: {flow: 1s, totals: 1s}}
  - {id: cj-2, bus: cj, address: "78330011223345", valve: true, poll: {flow: 5s, totals: 5s}}
filter: {window: 2s}
buffer: {path: ` + filepath.Join(dir, "buffer.db") + `}
mqtt:
  broker: "` + mq.url + `"
  topic_prefix: e2e
  commands: true
  command_keys: {k1: ` + k1.File + `, k2: ` + k2.File + `}
  batch: {max_count: 20, max_latency: 200ms}
`
	cfg := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	col := newE2ECollector(t, mq.url)
	tg := startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	eventually(t, 40*time.Second, "readings of cj-1", func() bool { return len(col.readings("cj-1")) >= 2 })
	send := func(payload string, retained bool) {
		t.Helper()
		col.publish(t, "e2e/v1/gw-e2e/cmd/valve", payload, retained)
	}
	// Every command's result is waited for by its id, and each burst's
	// last command decides the state.
	runs := 3
	if os.Getenv("TIDEGATE_LONG") != "" {
		runs = 20
	}
	actions := []string{"close", "open"}
	for run := range runs {
		last := ""
		for i := range 20 {
			a := actions[(i+run)%2]
			last = fmt.Sprintf("b%d-%d", run, i)
			send(k1.Valve(t, last, "cj-1", a, nil), false)
		}
		want := map[string]string{"close": "closed", "open": "open"}[actions[(19+run)%2]]
		res := col.result(t, last, 60*time.Second)
		if !res.OK || res.Result.Valve != want {
			t.Fatalf("run %d: the last command %s left the valve %+v, want %s", run, last, res, want)
		}
		for i := range 20 {
			if r := col.result(t, fmt.Sprintf("b%d-%d", run, i), 10*time.Second); !r.OK {
				t.Fatalf("run %d: command %d: %+v", run, i, r)
			}
		}
	}
	// Leave it open; nothing below may close it.
	send(k1.Valve(t, "open-1", "cj-1", "open", nil), false)
	if r := col.result(t, "open-1", 30*time.Second); !r.OK || r.Result.Valve != "open" {
		t.Fatalf("open: %+v", r)
	}
	e, ok := col.event("valve", "open-1")
	for deadline := time.Now().Add(20 * time.Second); !ok && time.Now().Before(deadline); e, ok = col.event("valve", "open-1") {
		time.Sleep(50 * time.Millisecond)
	}
	if !ok || e.Attrs["operator"] != "ops-7" || e.Attrs["sender"] != "mqtt signed kid=k1" || e.Attrs["outcome"] != "done" {
		t.Fatalf("valve event of open-1: %+v", e)
	}
	// The rate limit (cj-2 keeps the default, one movement a minute).
	send(k2.Valve(t, "rate-1", "cj-2", "close", nil), false)
	if r := col.result(t, "rate-1", 30*time.Second); !r.OK || r.Result.Valve != "closed" {
		t.Fatalf("cj-2 close: %+v", r)
	}
	send(k2.Valve(t, "rate-2", "cj-2", "open", nil), false)
	if r := col.result(t, "rate-2", 30*time.Second); r.OK || !strings.Contains(r.Error, "rate limit") {
		t.Fatalf("cj-2 moved twice within valve_min_interval: %+v", r)
	}
	eventually(t, 20*time.Second, "the refusal's valve event", func() bool {
		e, ok := col.event("valve", "rate-2")
		return ok && strings.HasPrefix(e.Attrs["outcome"], "refused: valve rate limit") && e.Attrs["sender"] == "mqtt signed kid=k2"
	})

	closeTok := k1.Valve(t, "c-used", "cj-1", "close", nil)
	send(closeTok, false)
	col.result(t, "c-used", 30*time.Second)
	send(k1.Valve(t, "open-2", "cj-1", "open", nil), false)
	if r := col.result(t, "open-2", 30*time.Second); !r.OK || r.Result.Valve != "open" {
		t.Fatalf("open: %+v", r)
	}

	other := newE2ESigner(t, dir, "k1") // same kid, another key
	parts := strings.Split(k1.Valve(t, "badsig", "cj-1", "close", nil), ".")
	now := time.Now()
	refused := []struct{ id, payload, want string }{
		{"c-used", closeTok, "already used"},
		{"expired", k1.Valve(t, "expired", "cj-1", "close", func(c jwt.MapClaims) {
			c["iat"] = now.Add(-10 * time.Minute).Unix()
			c["exp"] = now.Add(-5 * time.Minute).Unix()
		}), "expired"},
		{"early", k1.Valve(t, "early", "cj-1", "close", func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), "not valid yet"},
		{"wrong-aud", k1.Valve(t, "wrong-aud", "cj-1", "close", func(c jwt.MapClaims) { c["aud"] = "gw-other" }), "aud"},
		{"wrong-sub", k1.Valve(t, "wrong-sub", "cj-9", "close", nil), "no such meter"},
		{"unknown-kid", newE2ESigner(t, dir, "k9").Valve(t, "unknown-kid", "cj-1", "close", nil), "unknown signing key"},
		{"badsig", parts[0] + "." + parts[1] + "." + strings.Split(other.Valve(t, "badsig", "cj-1", "close", nil), ".")[2], "signature is invalid"},
		{"unsigned", `{"id":"unsigned","command":"valve","meter":"cj-1","action":"close"}`, "must be signed"},
	}
	for _, r := range refused {
		n := col.resultCount(r.id)
		send(r.payload, false)
		res := col.resultN(t, r.id, n+1, 20*time.Second)
		if res.OK || !strings.Contains(res.Error, r.want) {
			t.Errorf("%s: %+v, want an error with %q", r.id, res, r.want)
		}
	}

	// A restart: the replay window is in the buffer file. A retained
	// command left on the broker meanwhile comes with the retain flag.
	if code := tg.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("tidegate exit %d", code)
	}
	send(k1.Valve(t, "retained", "cj-1", "close", nil), true)
	tg = startProc(t, filepath.Join(bin, "tidegate"), "run", "--config", cfg)
	if res := col.result(t, "retained", 30*time.Second); res.OK || !strings.Contains(res.Error, "retained") {
		t.Errorf("retained: %+v", res)
	}
	send("", true) // clear it
	n := col.resultCount("c-used")
	send(closeTok, false)
	if res := col.resultN(t, "c-used", n+1, 20*time.Second); res.OK || !strings.Contains(res.Error, "already used") {
		t.Errorf("replay after restart: %+v", res)
	}
	// The valve never moved: still open, as read now.
	var st struct {
		Status []string `json:"status"`
	}
	out, err := newAPIClient(filepath.Join(dir, "api.sock")).do(t.Context(), "POST", "/v1/read?meter=cj-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if json.Unmarshal(b, &st) != nil || strings.Contains(strings.Join(st.Status, ","), "valve_closed") {
		t.Fatalf("after the refused commands the meter reads %s", b)
	}

	// /metrics on TCP: health, not a household's use.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(mb), "tidegate_meter_online") || strings.Contains(string(mb), "forward_m3") {
		t.Errorf("/metrics:\n%s", mb)
	}

	// 100 MB on the command topic: never read into the daemon's memory.
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 100<<20); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command("mosquitto_pub", "-p", strconv.Itoa(mq.port), "-h", "127.0.0.1", "-q", "1", "-t", "e2e/v1/gw-e2e/cmd/valve", "-f", big).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, o)
	}
	os.Remove(big)
	eventually(t, 20*time.Second, "the oversize packet logged", func() bool { return strings.Contains(tg.out.String(), "max_packet") })
	if rss := vmRSSOf(t, tg.cmd.Process.Pid); rss > 40<<20 {
		t.Errorf("tidegate VmRSS %d MB after a 100 MB publish", rss>>20)
	}
	before := len(col.readings("cj-1"))
	eventually(t, 40*time.Second, "readings after the oversize publish", func() bool { return len(col.readings("cj-1")) >= before+3 })
}

// newE2ESigner is a key of the service for the e2e gateway's commands,
// valid for 10 minutes (a loaded machine may take a while to deliver).
func newE2ESigner(t *testing.T, dir, kid string) cmdauthtest.Signer {
	s := cmdauthtest.New(t, dir, kid, "gw-e2e")
	s.TTL = 10 * time.Minute
	return s
}

type e2eMosquitto struct {
	url  string
	port int
}

func startE2EMosquitto(t *testing.T) e2eMosquitto {
	t.Helper()
	bin := "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto not installed; required when CI=true")
		}
		t.Skip("mosquitto not installed")
	}
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Skip("mosquitto_pub not installed")
	}
	addr := freeAddr(t)
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\n", port)
	if os.Geteuid() == 0 {
		text = "user root\n" + text
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, bin, "-c", conf)
	eventually(t, 10*time.Second, "mosquitto listens", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return e2eMosquitto{url: "tcp://" + addr, port: port}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// e2eCollector subscribes to readings, events and command results (never
// to the command topics, which a test floods).
type e2eCollector struct {
	c       paho.Client
	mu      sync.Mutex
	results map[string][]e2eResult
	records []e2eRecord
}

type e2eResult struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Result struct {
		Outcome string `json:"outcome"`
		Valve   string `json:"valve"`
	} `json:"result"`
}

type e2eRecord struct {
	Meter   string            `json:"meter"`
	Type    string            `json:"type"`
	Forward *float64          `json:"forward_m3"`
	Attrs   map[string]string `json:"attrs"`
}

func newE2ECollector(t *testing.T, url string) *e2eCollector {
	t.Helper()
	col := &e2eCollector{results: map[string][]e2eResult{}}
	col.c = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("e2e-service").SetOrderMatters(true))
	if tok := col.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { col.c.Disconnect(50) })
	tok := col.c.SubscribeMultiple(map[string]byte{"e2e/v1/gw-e2e/readings": 1, "e2e/v1/gw-e2e/events": 1, "e2e/v1/gw-e2e/cmd/+/result": 1}, func(_ paho.Client, m paho.Message) {
		col.mu.Lock()
		defer col.mu.Unlock()
		switch {
		case strings.HasSuffix(m.Topic(), "/result"):
			id := strings.TrimSuffix(strings.TrimPrefix(m.Topic(), "e2e/v1/gw-e2e/cmd/"), "/result")
			var r e2eResult
			json.Unmarshal(m.Payload(), &r)
			col.results[id] = append(col.results[id], r)
		case strings.HasSuffix(m.Topic(), "/readings"):
			var doc struct{ Batch []e2eRecord }
			json.Unmarshal(m.Payload(), &doc)
			col.records = append(col.records, doc.Batch...)
		default:
			var r e2eRecord
			json.Unmarshal(m.Payload(), &r)
			col.records = append(col.records, r)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return col
}

func (c *e2eCollector) publish(t *testing.T, topic, payload string, retained bool) {
	t.Helper()
	if tok := c.c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func (c *e2eCollector) readings(meter string) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []float64
	for _, r := range c.records {
		if r.Meter == meter && r.Forward != nil && r.Type == "" {
			out = append(out, *r.Forward)
		}
	}
	return out
}

func (c *e2eCollector) event(typ, request string) (e2eRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.records {
		if r.Type == typ && r.Attrs["request"] == request {
			return r, true
		}
	}
	return e2eRecord{}, false
}

func (c *e2eCollector) resultCount(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.results[id])
}

func (c *e2eCollector) result(t *testing.T, id string, d time.Duration) e2eResult {
	t.Helper()
	return c.resultN(t, id, 1, d)
}

func (c *e2eCollector) resultN(t *testing.T, id string, n int, d time.Duration) e2eResult {
	t.Helper()
	eventually(t, d, "result of "+id, func() bool { return c.resultCount(id) >= n })
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.results[id][n-1]
}

func vmRSSOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
