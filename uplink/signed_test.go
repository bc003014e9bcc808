package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"

	"tidegate/reading"
	"tidegate/uplink/cmdauth/cmdauthtest"
)

// newSigner is the central service's side of signed commands: a key for
// gw1's meters.
func newSigner(t testing.TB, kid string) cmdauthtest.Signer {
	return cmdauthtest.New(t, t.TempDir(), kid, "gw1")
}

// slowMeters records valve commands, how many ran at once, and can hold
// reads until released.
type slowMeters struct {
	meters
	running, maxRunning int
	holdReads           chan struct{}
	holdValve           chan struct{} // the next valve command waits for it
}

func (m *slowMeters) Valve(ctx context.Context, r ValveRequest) (any, error) {
	m.mu.Lock()
	m.running++
	m.maxRunning = max(m.maxRunning, m.running)
	m.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // long enough for a second worker to overlap, were there one
	m.mu.Lock()
	hold := m.holdValve
	m.holdValve = nil
	m.mu.Unlock()
	if hold != nil {
		<-hold
	}
	m.mu.Lock()
	m.running--
	m.mu.Unlock()
	return m.meters.Valve(ctx, r)
}

func (m *slowMeters) ReadMeter(ctx context.Context, id string) (reading.Reading, error) {
	if m.holdReads != nil {
		select {
		case <-m.holdReads:
		case <-ctx.Done():
			return reading.Reading{}, ctx.Err()
		}
	}
	return m.meters.ReadMeter(ctx, id)
}

type cmdRig struct {
	t   testing.TB
	u   *Uplink
	h   *slowMeters
	sub *collector
	pub paho.Client
}

func startSignedCommands(t testing.TB, url string, keys ...cmdauthtest.Signer) *cmdRig {
	t.Helper()
	r := &cmdRig{t: t, sub: subscribeResults(t, url), h: &slowMeters{meters: meters{intervals: map[string]time.Duration{"m-001": time.Minute}}}}
	cfg := testConfig(url)
	cfg.Commands = true
	cfg.CommandKeys = map[string]string{}
	for _, k := range keys {
		cfg.CommandKeys[k.Kid] = k.File
	}
	u, err := New(cfg, openBuffer(t), quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	r.u = u
	u.SetCommandHandler(r.h)
	startUplink(t, u)
	waitFor(t, 5*time.Second, "connected", u.Connected)
	r.pub = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("service"))
	if tok := r.pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { r.pub.Disconnect(50) })
	waitFor(t, 5*time.Second, "command subscription", func() bool {
		r.send("ping", `{"id":"probe"}`, false)
		return r.resultCount("probe") > 0
	})
	return r
}

func (r *cmdRig) send(name, payload string, retained bool) {
	r.t.Helper()
	if tok := r.pub.Publish("test/v1/gw1/cmd/"+name, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatalf("publish: %v", tok.Error())
	}
}

func (r *cmdRig) resultCount(id string) int {
	r.sub.mu.Lock()
	defer r.sub.mu.Unlock()
	return len(r.sub.payloads["test/v1/gw1/cmd/"+id+"/result"])
}

// result waits for the n-th (from 1) result on cmd/<id>/result.
func (r *cmdRig) result(id string, n int) commandResult {
	r.t.Helper()
	waitFor(r.t, 2*time.Second, "result of "+id, func() bool { return r.resultCount(id) >= n })
	r.sub.mu.Lock()
	defer r.sub.mu.Unlock()
	var res commandResult
	if err := json.Unmarshal(r.sub.payloads["test/v1/gw1/cmd/"+id+"/result"][n-1], &res); err != nil {
		r.t.Fatal(err)
	}
	return res
}

func (r *cmdRig) valves() []ValveRequest {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	return append([]ValveRequest(nil), r.h.valves...)
}

// Only a fresh, signed, unreplayed, unretained valve command reaches the
// handler; every other gets a clear result on its request's topic.
func TestSignedValveCommands(t *testing.T) {
	k1, k2, stranger := newSigner(t, "k1"), newSigner(t, "k2"), newSigner(t, "k1")
	br := startMochi(t)
	// A retained command left on the broker: a subscriber gets it, retain
	// flag set, at every (re)subscription. (Forwarded live, a broker clears
	// the flag; it runs once, as any command.)
	early := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("early"))
	if tok := early.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	early.Publish("test/v1/gw1/cmd/valve", 1, true, k1.Valve(t, "v3", "m-001", "open", nil)).Wait()
	early.Disconnect(50)
	r := startSignedCommands(t, br.URL(), k1, k2)
	if res := r.result("v3", 1); res.OK || !strings.Contains(res.Error, "retained") {
		t.Fatalf("retained command: %+v", res)
	}
	if tok := r.pub.Publish("test/v1/gw1/cmd/valve", 1, true, ""); tok.Wait() && tok.Error() != nil { // clear it
		t.Fatal(tok.Error())
	}

	good := k1.Valve(t, "v1", "m-001", "close", nil)
	r.send("valve", good, false)
	if res := r.result("v1", 1); !res.OK {
		t.Fatalf("signed valve refused: %+v", res)
	}
	r.send("valve", k2.Valve(t, "v2", "m-001", "open", nil), false) // the rotation's second key
	if res := r.result("v2", 1); !res.OK {
		t.Fatalf("second kid refused: %+v", res)
	}
	for _, tc := range []struct {
		id, payload string
		retained    bool
		want        string
	}{
		{"v1", good, false, "already used"},
		{"v4", `{"id":"v4","command":"valve","meter":"m-001","action":"open"}`, false, "must be signed"},
		{"v5", k1.Valve(t, "v5", "m-001", "open", func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			c["iat"] = time.Now().Add(-5 * time.Minute).Unix()
		}), false, "expired"},
		{"v6", k1.Valve(t, "v6", "m-001", "open", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(3 * time.Minute).Unix() }), false, "not valid yet"},
		{"v7", k1.Valve(t, "v7", "m-001", "open", func(c jwt.MapClaims) { c["aud"] = "gw2" }), false, "aud"},
		{"v8", stranger.Valve(t, "v8", "m-001", "open", nil), false, "signature is invalid"},
		{"v9", newSigner(t, "k9").Valve(t, "v9", "m-001", "open", nil), false, "unknown signing key"},
		{"v10", k1.Valve(t, "v10", "m-001", "open", func(c jwt.MapClaims) { c["cmd"] = "read" }), false, "cmd \"read\" sent on topic cmd/valve"},
	} {
		n := r.resultCount(tc.id) + 1
		r.send("valve", tc.payload, tc.retained)
		res := r.result(tc.id, n)
		if res.OK || !strings.Contains(res.Error, tc.want) {
			t.Errorf("%s: result %+v, want an error with %q", tc.id, res, tc.want)
		}
	}
	// Every command takes the signed form: cmd names it, sub the meter.
	r.send("read", k1.Valve(t, "sr1", "m-001", "", func(c jwt.MapClaims) { c["cmd"] = "read"; delete(c, "action") }), false)
	if res := r.result("sr1", 1); !res.OK {
		t.Fatalf("signed read: %+v", res)
	}
	v := r.valves()
	if len(v) != 2 || v[0].ID != "v1" || v[0].Action != "close" || v[0].Operator != "ops-7" || v[0].Sender != "mqtt signed kid=k1" || v[1].ID != "v2" || v[1].Sender != "mqtt signed kid=k2" {
		t.Fatalf("valve handler saw %+v, want v1 (close, k1) and v2 (open, k2) only", v)
	}
	if v[0].NotAfter.IsZero() {
		t.Fatal("NotAfter not passed on")
	}
}

// A burst runs in the order sent, one at a time; a flood of reads held up
// at the meter fills its own queue, and a valve command still runs.
func TestCommandsInOrderAndQueuesApart(t *testing.T) {
	k1 := newSigner(t, "k1")
	r := startSignedCommands(t, startMochi(t).URL(), k1)
	actions := []string{"close", "open"}
	for i := range 20 {
		r.send("valve", k1.Valve(t, "b"+strconv.Itoa(i), "m-001", actions[i%2], nil), false)
	}
	r.result("b19", 1)
	v := r.valves()
	if len(v) != 20 {
		t.Fatalf("%d valve commands ran, want 20", len(v))
	}
	for i, x := range v {
		if x.ID != "b"+strconv.Itoa(i) || x.Action != actions[i%2] {
			t.Fatalf("command %d was %s %s: out of order (%+v)", i, x.ID, x.Action, v)
		}
	}
	r.h.mu.Lock()
	if r.h.maxRunning != 1 {
		t.Errorf("%d valve commands ran at once", r.h.maxRunning)
	}
	r.h.holdReads = make(chan struct{})
	r.h.mu.Unlock()

	for i := range commandQueue + 5 {
		r.send("read", fmt.Sprintf(`{"id":"rd%d","meter":"m-001"}`, i), false)
	}
	if res := r.result(fmt.Sprintf("rd%d", commandQueue+4), 1); res.OK || !strings.Contains(res.Error, "waiting") {
		t.Fatalf("read beyond the queue: %+v, want busy", res)
	}
	r.send("valve", k1.Valve(t, "late", "m-001", "close", nil), false)
	if res := r.result("late", 1); !res.OK {
		t.Fatalf("valve behind a read flood: %+v", res)
	}
	close(r.h.holdReads)
	if res := r.result("rd0", 1); !res.OK {
		t.Fatalf("held read: %+v", res)
	}
}

// A command whose exp passes while it waits behind another is never handed
// to the handler: it is answered "expired", nothing sent.
func TestCommandExpiredInQueue(t *testing.T) {
	k1 := newSigner(t, "k1")
	r := startSignedCommands(t, startMochi(t).URL(), k1)
	hold := make(chan struct{})
	r.h.mu.Lock()
	r.h.holdValve = hold
	r.h.mu.Unlock()
	r.send("valve", k1.Valve(t, "slow", "m-001", "close", nil), false)
	waitFor(t, time.Second, "the first command running", func() bool { r.h.mu.Lock(); defer r.h.mu.Unlock(); return r.h.running == 1 })
	exp := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second) // 1-2 s from now, whole seconds as in a token
	r.send("valve", k1.Valve(t, "short", "m-001", "open", func(c jwt.MapClaims) { c["exp"] = exp.Unix() }), false)
	time.Sleep(time.Until(exp) + 100*time.Millisecond)
	close(hold)
	if res := r.result("short", 1); res.OK || !strings.Contains(res.Error, "expired before it could be sent") {
		t.Fatalf("short-lived command: %+v", res)
	}
	if res := r.result("slow", 1); !res.OK {
		t.Fatalf("first command: %+v", res)
	}
	if v := r.valves(); len(v) != 1 || v[0].ID != "slow" {
		t.Fatalf("handler saw %+v", v)
	}
}

// A 100 MB publish on a command topic is never read into memory: the
// connection is closed at its fixed header, the uplink reconnects and goes
// on publishing. (mosquitto's default message_size_limit, 0, allows up to
// 256 MB.)
func TestOversizeCommandMosquitto(t *testing.T) {
	m := startMosquitto(t, "")
	r := startSignedCommands(t, m.url("tcp"))
	rss0 := vmRSS(t)
	f := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, 100<<20); err != nil { // not allocated here: this process's RSS is what is measured
		t.Fatal(err)
	}
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed")
	}
	out, err := exec.Command(pub, "-p", strconv.Itoa(m.port), "-h", "127.0.0.1", "-q", "1", "-t", "test/v1/gw1/cmd/valve", "-f", f).CombinedOutput()
	os.Remove(f)
	if err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}
	waitFor(t, 5*time.Second, "the oversize packet refused", func() bool { return r.u.Stats().OversizePackets > 0 })
	waitFor(t, 5*time.Second, "reconnected", func() bool { s := r.u.Stats(); return s.Connected && s.Connects >= 2 })
	if grew := vmRSS(t) - rss0; grew > 20<<20 {
		t.Errorf("VmRSS grew by %d MB", grew>>20)
	}
	// Sent again while no result comes, as a service does: the session is
	// clean, and a command published between the reconnect and the
	// command subscription's SUBACK (a wide moment on a loaded machine)
	// reaches no one.
	waitFor(t, 20*time.Second, "a result after the oversize packet", func() bool {
		if r.resultCount("after") == 0 {
			r.send("ping", `{"id":"after"}`, false)
			time.Sleep(500 * time.Millisecond)
		}
		return r.resultCount("after") > 0
	})
	if res := r.result("after", 1); !res.OK {
		t.Fatalf("commands after the oversize packet: %+v", res)
	}
	if !strings.Contains(r.u.Stats().LastError, "max_packet") {
		t.Errorf("last error %q does not say why", r.u.Stats().LastError)
	}
}

// subscribeResults collects cmd/+/result only (not the commands, which
// may be huge).
func subscribeResults(t testing.TB, url string) *collector {
	t.Helper()
	c := &collector{payloads: map[string][][]byte{}}
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("results").SetOrderMatters(true))
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	tok := cl.Subscribe("test/v1/gw1/cmd/+/result", 1, func(_ paho.Client, m paho.Message) { c.add(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(50) })
	return c
}

// vmRSS is this process's resident set in bytes.
func vmRSS(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
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

var _ sync.Mutex
