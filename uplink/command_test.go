package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"tidegate/reading"
	"tidegate/uplink/cmdauth"
)

// meters is a small CommandHandler over an in-memory fleet, as the daemon's
// would be over its buses.
type meters struct {
	mu        sync.Mutex
	intervals map[string]time.Duration
	valves    []ValveRequest
}

var errNoMeter = errors.New("no such meter")

func (m *meters) ReadMeter(_ context.Context, id string) (reading.Reading, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.intervals[id]; !ok {
		return reading.Reading{}, fmt.Errorf("%w: %s", errNoMeter, id)
	}
	return reading.Reading{Meter: id, Received: time.Now(), Has: reading.HasForward, Forward: 12.5}, nil
}

func (m *meters) SetInterval(_ context.Context, id string, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.intervals[id]; !ok {
		return fmt.Errorf("%w: %s", errNoMeter, id)
	}
	m.intervals[id] = d
	return nil
}

// Valve makes meters a ValveHandler: the request id comes through.
func (m *meters) Valve(_ context.Context, r ValveRequest) (any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.intervals[r.Meter]; !ok {
		return nil, fmt.Errorf("%w: %s", errNoMeter, r.Meter)
	}
	m.valves = append(m.valves, r)
	return map[string]string{"request": r.ID, "meter": r.Meter, "action": r.Action, "outcome": "done", "sender": r.Sender}, nil
}

// Backfill makes meters a BackfillHandler: the range comes through.
func (m *meters) Backfill(_ context.Context, id string, from, to time.Time) (any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.intervals[id]; !ok {
		return nil, fmt.Errorf("%w: %s", errNoMeter, id)
	}
	return map[string]any{"meter": id, "days": int(to.Sub(from).Hours() / 24)}, nil
}

func startCommands(t *testing.T, enabled bool) (*meters, func(topic, payload, resultID string) (map[string]any, bool)) {
	br := startMochi(t)
	sub := subscribe(t, br.URL(), "test")
	cfg := testConfig(br.URL())
	cfg.Commands = enabled
	cfg.UnsignedValve = true
	cfg.UnsignedConfig = true
	u, err := New(cfg, openBuffer(t), quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &meters{intervals: map[string]time.Duration{"m-001": time.Minute}}
	u.SetCommandHandler(h)
	startUplink(t, u)
	waitFor(t, 5*time.Second, "connected", u.Connected)
	time.Sleep(100 * time.Millisecond) // the command subscription follows the CONNACK
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("service"))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(50) })
	send := func(topic, payload, resultID string) (map[string]any, bool) {
		rt := "test/v1/gw1/cmd/" + resultID + "/result"
		sub.mu.Lock()
		before := len(sub.payloads[rt])
		sub.mu.Unlock()
		pub.Publish("test/v1/gw1/cmd/"+topic, 1, false, payload).Wait()
		deadline := time.Now().Add(2 * time.Second)
		if !enabled {
			deadline = time.Now().Add(500 * time.Millisecond)
		}
		for time.Now().Before(deadline) {
			sub.mu.Lock()
			ps := sub.payloads[rt]
			sub.mu.Unlock()
			if len(ps) > before {
				var m map[string]any
				if err := json.Unmarshal(ps[len(ps)-1], &m); err != nil {
					t.Fatalf("result not JSON: %s", ps[len(ps)-1])
				}
				return m, true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil, false
	}
	return h, send
}

func TestCommands(t *testing.T) {
	h, send := startCommands(t, true)
	for _, tc := range []struct {
		name, topic, payload, resultID string
		ok                             bool
		want                           string // in the result JSON
	}{
		{"ping", "ping", `{"id":"r1","command":"ping"}`, "r1", true, `"gateway":"gw1"`},
		{"ping, command from topic", "ping", `{"id":"r2"}`, "r2", true, `"version"`},
		{"read", "read", `{"id":"r3","command":"read","meter":"m-001"}`, "r3", true, `"forward_m3":12.5`},
		{"read unknown meter", "read", `{"id":"r4","command":"read","meter":"m-999"}`, "r4", false, "no such meter"},
		{"read without meter", "read", `{"id":"r5","command":"read"}`, "r5", false, "needs a meter"},
		{"set_interval", "set_interval", `{"id":"r6","command":"set_interval","meter":"m-001","interval":"30s"}`, "r6", true, `"interval":"30s"`},
		{"set_interval bad", "set_interval", `{"id":"r7","command":"set_interval","meter":"m-001","interval":"soon"}`, "r7", false, "positive duration"},
		{"valve", "valve", `{"id":"v1","command":"valve","meter":"m-001","action":"close"}`, "v1", true, `"request":"v1"`},
		{"valve bad action", "valve", `{"id":"v2","command":"valve","meter":"m-001","action":"wiggle"}`, "v2", false, "want open or close"},
		{"valve unknown meter", "valve", `{"id":"v3","command":"valve","meter":"m-999","action":"open"}`, "v3", false, "no such meter"},
		{"backfill", "backfill", `{"id":"b1","command":"backfill","meter":"m-001","from":"2026-12-01T00:00:00Z","to":"2026-12-04T00:00:00Z"}`, "b1", true, `"days":3`},
		{"backfill reversed", "backfill", `{"id":"b2","command":"backfill","meter":"m-001","from":"2026-12-04T00:00:00Z","to":"2026-12-01T00:00:00Z"}`, "b2", false, "from before to"},
		{"backfill unknown meter", "backfill", `{"id":"b3","command":"backfill","meter":"m-999","from":"2026-12-01T00:00:00Z","to":"2026-12-04T00:00:00Z"}`, "b3", false, "no such meter"},
		{"unknown command", "reboot", `{"id":"r8","command":"reboot"}`, "r8", false, "unknown command"},
		{"topic mismatch", "ping", `{"id":"r9","command":"read"}`, "r9", false, "sent on topic"},
		{"not JSON", "ping", `{"id":"r10",`, "_", false, "malformed"},
		{"bad id", "ping", `{"id":"a/b","command":"ping"}`, "_", false, "must be 1-64"},
		{"no id", "ping", `{"command":"ping"}`, "_", false, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, got := send(tc.topic, tc.payload, tc.resultID)
			if !got {
				t.Fatalf("no result on cmd/%s/result", tc.resultID)
			}
			b, _ := json.Marshal(res)
			if res["ok"] != tc.ok || !strings.Contains(string(b), tc.want) {
				t.Fatalf("result %s, want ok=%v with %s", b, tc.ok, tc.want)
			}
		})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.intervals["m-001"] != 30*time.Second {
		t.Fatalf("set_interval did not reach the handler: %v", h.intervals)
	}
}

func TestCommandsOffByDefault(t *testing.T) {
	_, send := startCommands(t, false)
	if res, got := send("ping", `{"id":"r1","command":"ping"}`, "r1"); got {
		t.Fatalf("commands disabled but got %v", res)
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`{"id":"r1","command":"ping"}`, `{"id":"r3","command":"read","meter":"m-001"}`,
		`{"id":"r6","command":"set_interval","meter":"m","interval":"30s"}`, `{`, `[]`, `null`, `{"id":1}`, ``} {
		f.Add("ping", []byte(s))
	}
	f.Fuzz(func(t *testing.T, name string, p []byte) {
		u := &Uplink{verifier: &cmdauth.Verifier{Audience: "gw1", Default: cmdauth.Policy{Unsigned: true}}}
		req, _, err := u.parseCommand(name, p)
		if err == nil && (!commandID.MatchString(req.ID) || req.Command != name) {
			t.Fatalf("accepted %q on %q: %+v", p, name, req)
		}
		if err != nil && !errors.Is(err, ErrCommandMalformed) && !errors.Is(err, cmdauth.ErrUnknownKey) {
			t.Fatalf("error %v is not ErrCommandMalformed", err)
		}
	})
}
