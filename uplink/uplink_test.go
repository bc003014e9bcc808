package uplink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"tidegate/uplink/broker"
)

func startMochi(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// startProxy puts a misbehaving-on-demand proxy in front of the broker at
// target (host:port); it closes when the test ends.
func startProxy(t testing.TB, target string) *broker.Proxy {
	t.Helper()
	px, err := broker.NewProxy("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return px
}

func TestDrainMochi(t *testing.T) {
	br := startMochi(t)
	q := openBuffer(t)
	last := fill(t, q, 3000, 7)
	sub := subscribe(t, br.URL(), "test")
	log, _ := quietLog(t)
	u, err := New(testConfig(br.URL()), q, log)
	if err != nil {
		t.Fatal(err)
	}
	stop := startUplink(t, u)
	waitFor(t, 20*time.Second, "buffer drained", func() bool { return q.Cursor() == last })
	waitFor(t, 5*time.Second, "all readings at the subscriber", func() bool { got, _ := sub.unique(); return uint64(len(got)) == last })
	got, dups := sub.unique()
	checkAll(t, got, last)
	if dups != 0 {
		t.Errorf("%d duplicates without any outage", dups)
	}
	s := u.Stats()
	if s.Records != last || s.Batches != (last+199)/200 || !s.Connected {
		t.Errorf("stats %+v, want %d records in %d batches", s, last, (last+199)/200)
	}
	if err := u.Run(context.Background()); !errors.Is(err, ErrRunTwice) {
		t.Errorf("second Run: %v", err)
	}
	if err := stop(); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	waitFor(t, 5*time.Second, "offline status", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.status) >= 2 && strings.Contains(sub.status[len(sub.status)-1], `"state":"offline"`)
	})
	if !strings.Contains(sub.status[0], `"state":"online"`) || !strings.Contains(sub.status[0], `"config_hash"`) {
		t.Errorf("birth message %s", sub.status[0])
	}
}

// TestLastWill: a connection that dies without DISCONNECT makes the broker
// publish the retained "offline" will; reconnecting publishes "online" again.
func TestLastWill(t *testing.T) {
	br := startMochi(t)
	px := startProxy(t, br.Addr())
	sub := subscribe(t, br.URL(), "test")
	u, _ := New(testConfig(px.URL()), openBuffer(t), quietLogEntry(t))
	startUplink(t, u)
	states := func() []string {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		var out []string
		for _, s := range sub.status {
			switch {
			case strings.Contains(s, `"state":"online"`):
				out = append(out, "online")
			case strings.Contains(s, `"state":"offline"`):
				out = append(out, "offline")
			}
		}
		return out
	}
	waitFor(t, 5*time.Second, "birth", func() bool { return len(states()) == 1 })
	px.CutAll()
	// The broker may publish the will after the new connection's online;
	// the uplink then says online once more (status.go). What must hold:
	// an offline after the first online, and online as the last word.
	waitFor(t, 10*time.Second, "will, then birth again", func() bool {
		st := states()
		return len(st) >= 3 && st[len(st)-1] == "online" && strings.Contains(strings.Join(st[1:], ","), "offline")
	})
	if got := states(); got[0] != "online" {
		t.Fatalf("status sequence %s", strings.Join(got, ","))
	}
}
