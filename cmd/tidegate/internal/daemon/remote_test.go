package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/uplink"
)

func remoteConfigText(dir, unsigned, meters string) string {
	return `gateway: {id: gw-test}
api: {socket: ` + filepath.Join(dir, "api.sock") + `}
# the two lines of the block
buses:
  - {name: a, protocol: modbus, device: /dev/null}
  - {name: b, protocol: mbus, device: /dev/null}
meters:
` + meters + `
buffer: {path: ` + filepath.Join(dir, "buf.db") + `}
mqtt: {broker: "tcp://gwuser:S3cretPW@127.0.0.1:1", unsigned_config: ` + unsigned + `}
`
}

func startRemoteDaemon(t *testing.T, unsigned string) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "tidegate.yaml")
	if err := os.WriteFile(path, []byte(remoteConfigText(dir, unsigned, "  - {id: m1, bus: b, address: 1}  # kitchen")), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d := New(Options{Config: cfg, ConfigPath: path, Version: "test", Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.rollback != nil })
	return d, path
}

// The remote configuration commands, in the daemon: refusals (unsigned
// where not allowed, stale base_hash, a config with a problem, with its
// file:line:col) change nothing; a good config is written and applied and
// reports what it restarted; meters_upsert keeps the file's comments;
// config_get never shows a password.
func TestRemoteConfigure(t *testing.T) {
	d, path := startRemoteDaemon(t, "allow")
	dir := filepath.Dir(path)
	h0 := d.config().Hash
	if u := d.status().Broker.URL; u != "tcp://gwuser:***@127.0.0.1:1" {
		t.Errorf("status broker URL %q: the password must never be shown", u)
	}

	// config_get: the running text, redacted.
	got, err := d.configure(uplink.ConfigRequest{ID: "g1", Command: "config_get"})
	if err != nil {
		t.Fatal(err)
	}
	cg := got.(ConfigGetResult)
	if cg.ConfigHash != h0 || strings.Contains(cg.Config, "S3cretPW") || !strings.Contains(cg.Config, "gwuser:***@") || !strings.Contains(cg.Config, "# kitchen") {
		t.Fatalf("config_get: %+v", cg)
	}

	two := remoteConfigText(dir, "allow", "  - {id: m1, bus: b, address: 1}  # kitchen\n  - {id: m2, bus: b, address: 2}")
	if _, err := d.configure(uplink.ConfigRequest{ID: "s1", Command: "config", BaseHash: "0123456789abcdef", Config: two}); !errors.Is(err, ErrStaleBase) {
		t.Fatalf("stale base_hash: %v", err)
	}
	broken := strings.Replace(two, "address: 2}", "address: 2, baud: 9600}", 1)
	_, err = d.configure(uplink.ConfigRequest{ID: "p1", Command: "config", BaseHash: h0, Config: broken})
	var pl uplink.ProblemLister
	if !errors.Is(err, ErrConfigProblems) || !errors.As(err, &pl) || len(pl.ProblemList()) != 1 ||
		!strings.HasPrefix(pl.ProblemList()[0], "tidegate.yaml:9:34: meters[1].baud: unknown key") {
		t.Fatalf("a config with a problem: %v %q", err, pl.ProblemList())
	}
	if d.config().Hash != h0 {
		t.Fatal("a refused config changed the running one")
	}

	res, err := d.configure(uplink.ConfigRequest{ID: "c1", Command: "config", BaseHash: h0, Config: two})
	if err != nil {
		t.Fatal(err)
	}
	cr := res.(ConfigResult)
	if b, _ := os.ReadFile(path); string(b) != two {
		t.Fatalf("file after config:\n%s", b)
	}
	if cr.ConfigHash != d.config().Hash || cr.ConfigHash == h0 || strings.Join(cr.Restarted.Buses, ",") != "b" || strings.Join(cr.Restarted.Meters, ",") != "m2" {
		t.Fatalf("result %+v, running %s", cr, d.config().Hash)
	}
	j, _ := json.Marshal(cr)
	if !strings.Contains(string(j), `"restarted":{"buses":["b"],"meters":["m2"]}`) {
		t.Errorf("result JSON %s", j)
	}
	// The same again: stale now.
	if _, err := d.configure(uplink.ConfigRequest{ID: "c2", Command: "config", BaseHash: h0, Config: two}); !errors.Is(err, ErrStaleBase) {
		t.Fatalf("a second push from the old base: %v", err)
	}

	// config_get, edit, push: the password left as *** stays the running one.
	got, _ = d.configure(uplink.ConfigRequest{ID: "g2", Command: "config_get"})
	edited := strings.Replace(got.(ConfigGetResult).Config, "# kitchen", "# kitchen, 2nd floor", 1)
	if _, err := d.configure(uplink.ConfigRequest{ID: "c3", Command: "config", BaseHash: d.config().Hash, Config: edited}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "gwuser:S3cretPW@") || !strings.Contains(string(b), "2nd floor") {
		t.Fatalf("after a round trip through config_get:\n%s", b)
	}

	// meters_upsert: m2 moves to address 5, the comment on m1 stays.
	_, err = d.configure(uplink.ConfigRequest{ID: "u1", Command: "meters_upsert", Meters: json.RawMessage(`[{"id":"m2","bus":"b","address":5}]`)})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := d.config().MeterByID("m2"); m.Address != 5 {
		t.Fatalf("m2 after upsert: %+v", m)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "# kitchen") || !strings.Contains(string(b), "# the two lines of the block") {
		t.Errorf("comments lost:\n%s", b)
	}
	if _, err := d.configure(uplink.ConfigRequest{ID: "r1", Command: "meters_remove", Meters: json.RawMessage(`["m2"]`)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.config().MeterByID("m2"); ok {
		t.Fatal("m2 still there after meters_remove")
	}
	// Another broker: the result comes back before the config is applied
	// (the reload may take the result's connection), then it is applied.
	cur, _ := os.ReadFile(path)
	moved := strings.Replace(string(cur), "127.0.0.1:1\"", "127.0.0.1:2\"", 1)
	res, err = d.configure(uplink.ConfigRequest{ID: "b1", Command: "config", BaseHash: d.config().Hash, Config: moved})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.config().Hash == res.(ConfigResult).ConfigHash })
	if res.(ConfigResult).RollbackAfter != "" {
		t.Errorf("rollback_after %q where no config ever reached a broker (nothing to roll back to)", res.(ConfigResult).RollbackAfter)
	}
	if _, err := d.configure(uplink.ConfigRequest{ID: "r2", Command: "meters_upsert", Meters: json.RawMessage(`[{"id":"m9","bus":"nowhere","address":5}]`)}); !errors.Is(err, ErrConfigProblems) {
		t.Fatalf("upsert onto a bus that does not exist: %v", err)
	}
}

func TestRemoteConfigureUnsignedRefused(t *testing.T) {
	d, path := startRemoteDaemon(t, "refuse")
	before, _ := os.ReadFile(path)
	_, err := d.configure(uplink.ConfigRequest{ID: "c1", Command: "config", BaseHash: d.config().Hash, Config: string(before)})
	if !errors.Is(err, ErrUnsignedConfig) {
		t.Fatalf("unsigned config where mqtt.unsigned_config: refuse: %v", err)
	}
	if _, err := d.configure(uplink.ConfigRequest{ID: "u1", Command: "meters_remove", Meters: json.RawMessage(`["m1"]`)}); !errors.Is(err, ErrUnsignedConfig) {
		t.Fatalf("unsigned meters_remove: %v", err)
	}
}
