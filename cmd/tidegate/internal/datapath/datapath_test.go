package datapath

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

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
	"tidegate/uplink/broker"
)

// The shutdown order loses nothing: records a bus handed to the pipeline
// just before Close are stored, sent while the broker is reachable, and
// the uplink's "offline" comes after the last of them; the buffer file is
// closed last and holds nothing unsent.
func TestCloseOrder(t *testing.T) {
	br, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	var mu sync.Mutex
	var order []string // "r<message>" per event, "offline"
	br.Subscribe("#", func(topic string, p []byte) {
		var m struct{ Message, State string }
		json.Unmarshal(p, &m)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasSuffix(topic, "/events"):
			order = append(order, "r"+m.Message)
		case strings.HasSuffix(topic, "/status") && m.State == "offline":
			order = append(order, "offline")
		}
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	y := fmt.Sprintf(`gateway: {id: gw-dp}
buses: []
meters: []
buffer: {path: %s, commit_latency: 500ms}
mqtt: {broker: "%s", topic_prefix: dp, reconnect_jitter: off, retained_wait: 100ms}
`, filepath.Join(dir, "b.db"), br.URL())
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(cfg, discardLog(), nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !p.Up().Connected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	const n = 200
	for i := range n {
		p.Own.Event(reading.Event{Time: time.Now(), Type: "t", Message: fmt.Sprint(i)})
	}
	// Close at once: the records wait in the pipeline for their commit.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for i, o := range order {
		if o == "offline" {
			if i != len(order)-1 {
				t.Fatalf("offline before the last record: %v", order[i:])
			}
			continue
		}
		seen[o] = true
	}
	if len(seen) != n || order[len(order)-1] != "offline" {
		t.Fatalf("%d of %d records sent before the stop, last message %q", len(seen), n, order[len(order)-1])
	}
	b, err := buffer.Open(filepath.Join(dir, "b.db"), buffer.Options{Logger: discardLog()})
	if err != nil {
		t.Fatalf("the buffer file is still held: %v", err)
	}
	defer b.Close()
	if d := b.Stats().Depth; d != 0 {
		t.Errorf("%d records left unsent", d)
	}
}
