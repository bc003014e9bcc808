package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
	"tidegate/uplink/broker"
)

// A SIGHUP that changes the mqtt topic prefix and moves the buffer file
// is applied without a restart: the uplink and the data path restart
// in-process, every record ingested before, during and after the reload
// arrives, in order, and the birth message says the hash that runs.
// (Before: both were logged needs_restart; status said the new hash while
// the birth carried the old one.)
func TestReloadAppliesMQTTAndBuffer(t *testing.T) {
	br, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	var mu sync.Mutex
	got := map[string][]string{} // prefix → event messages in arrival order
	birth := map[string]string{} // prefix → last retained config_hash
	br.Subscribe("#", func(topic string, p []byte) {
		prefix, _, _ := strings.Cut(topic, "/")
		var m struct {
			Message    string `json:"message"`
			State      string `json:"state"`
			ConfigHash string `json:"config_hash"`
		}
		json.Unmarshal(p, &m)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasSuffix(topic, "/events"):
			got[prefix] = append(got[prefix], m.Message)
		case strings.HasSuffix(topic, "/status") && m.State == "online":
			birth[prefix] = m.ConfigHash
		}
	})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	write := func(prefix, buf string) {
		y := fmt.Sprintf(`gateway: {id: gw-r}
api: {socket: %s}
buses: []
meters: []
buffer: {path: %s}
mqtt: {broker: "%s", topic_prefix: %s, reconnect_jitter: off, connect_gap: off, retained_wait: 100ms, batch: {max_latency: 20ms}}
`, filepath.Join(dir, "api.sock"), filepath.Join(dir, buf), br.URL(), prefix)
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("p1", "one.db")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	d := New(Options{Config: cfg, ConfigPath: cfgPath, Version: "test", Log: NewLogger(logs, "debug", "json")})
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, hup) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return d.path() != nil && d.path().Up() != nil && d.path().Up().Connected() })

	const n = 300
	ingest := func(from, to int) {
		for i := from; i < to; i++ {
			d.path().Own.Event(reading.Event{Time: time.Now(), Type: "t", Message: fmt.Sprint(i)})
		}
	}
	ingest(0, n/2) // stored in one.db, partly sent on p1
	write("p2", "two.db")
	hup <- os.Interrupt
	waitFor(t, func() bool { return strings.Contains(logs.String(), `"msg":"reloaded"`) })
	ingest(n/2, n)
	nc, _ := config.Load(cfgPath, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		seen := map[string]bool{}
		for _, ms := range got {
			for _, m := range ms {
				seen[m] = true
			}
		}
		ok := len(seen) == n && birth["p2"] == nc.Hash
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records arrived, birth on p2 %q (want %q); logs:\n%s", len(seen), n, birth["p2"], nc.Hash, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	// Order: first arrivals in the order ingested.
	seen, last := map[string]bool{}, -1
	for _, p := range []string{"p1", "p2"} {
		for _, m := range got[p] {
			if seen[m] {
				continue
			}
			seen[m] = true
			var i int
			fmt.Sscan(m, &i)
			if i < last {
				t.Fatalf("record %d arrived after %d", i, last)
			}
			last = i
		}
	}
	if strings.Contains(logs.String(), "needs_restart") {
		t.Error("reload says needs_restart")
	}
	t.Logf("p1 got %d, p2 got %d (with resends), birth on p2 %s", len(got["p1"]), len(got["p2"]), birth["p2"])
	if st := d.status(); st.ConfigHash != nc.Hash {
		t.Errorf("status hash %s, want %s", st.ConfigHash, nc.Hash)
	}
}
