package uplink

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"tidegate/reading"
	"tidegate/uplink/broker"
)

// emptyQueue is a buffer with nothing to send: the herd test is about
// connecting, and 200 bbolt files would only add fsyncs.
type emptyQueue struct{}

func (emptyQueue) Read(uint64, int) ([]reading.Record, error)       { return nil, nil }
func (emptyQueue) ReadUrgent(uint64, int) ([]reading.Record, error) { return nil, nil }
func (emptyQueue) Ack(...uint64) error                              { return nil }
func (emptyQueue) AckUpTo(uint64) error                             { return nil }
func (emptyQueue) Notify() <-chan struct{}                          { return nil }

// 200 uplinks against one real broker that is restarted after they all
// connected: every one connected again within 60 s of the broker's return,
// no second with more than 10 % of them, none connecting more than 3 times a
// minute. Every duration of the uplink's connect policy and of the test is
// scaled by the same factor (1/4 in make test, 1 with TIDEGATE_LONG=1), so
// the short run checks the same ratios. (Before: every box doubled its wait
// from the moment the broker went away plus a fixed 1 s of jitter: 50
// gateways after a 30 s restart came back 1–33 s after the broker, 8 of
// them in the first 2 s.)
func TestHerdAfterBrokerRestart(t *testing.T) {
	scale := 0.25
	if os.Getenv("TIDEGATE_LONG") == "1" {
		scale = 1
	}
	sc := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	const n = 200
	var (
		mu       sync.Mutex
		connects = map[string][]time.Time{}
		t0       = time.Now()
	)
	count := func(id string) {
		mu.Lock()
		connects[id] = append(connects[id], time.Now())
		mu.Unlock()
	}
	br, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := br.Addr()
	br.OnConnect(count)
	defer func() { br.Close() }()

	var ups []*Uplink
	for i := range n {
		cfg := Config{Broker: "tcp://" + addr, Gateway: fmt.Sprintf("gw%03d", i), TopicPrefix: "herd",
			ReconnectMin: sc(time.Second), ReconnectMax: sc(time.Minute), ReconnectJitter: sc(DefaultReconnectJitter),
			ConnectGap: sc(DefaultConnectGap), ProbeInterval: sc(DefaultProbeInterval), KeepAlive: 30 * time.Second}
		u, err := New(cfg, emptyQueue{}, quietLogEntry(t))
		if err != nil {
			t.Fatal(err)
		}
		startUplink(t, u)
		ups = append(ups, u)
	}
	allConnected := func() bool {
		for _, u := range ups {
			if !u.Connected() {
				return false
			}
		}
		return true
	}
	waitFor(t, sc(DefaultReconnectJitter), "every uplink connected", allConnected)
	start := since(connects, t0, time.Time{})

	br.Close()
	time.Sleep(sc(30 * time.Second)) // the broker's restart
	br, err = broker.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	br.OnConnect(count)
	back := time.Now()
	limit := sc(time.Minute)
	waitFor(t, limit/4, "every uplink connected again", allConnected)
	time.Sleep(sc(2 * time.Second)) // stragglers' extra connects, if any, would show

	mu.Lock()
	defer mu.Unlock()
	after := since(connects, back, back)
	bin := sc(time.Second)
	bins := map[int]int{}
	var latest time.Duration
	for id, ts := range connects {
		var first time.Time
		for _, at := range ts {
			if at.After(back) {
				first = at
				break
			}
		}
		if first.IsZero() {
			t.Errorf("%s did not connect after the broker's return", id)
			continue
		}
		latest = max(latest, first.Sub(back))
		if d := first.Sub(back); d > limit {
			t.Errorf("%s connected %s after the broker's return (limit %s)", id, d, limit)
		}
		for _, at := range ts {
			if at.After(back) {
				bins[int(at.Sub(back)/bin)]++
			}
		}
		for i := 0; i+3 < len(ts); i++ {
			if ts[i+3].Sub(ts[i]) < limit {
				t.Errorf("%s connected 4 times within %s: %v", id, ts[i+3].Sub(ts[i]), ts)
			}
		}
	}
	peak := 0
	for _, c := range bins {
		peak = max(peak, c)
	}
	t.Logf("scale %.2f: first connects over %s (peak %s); after the return: %d connects, all within %s (%.1f s at full scale), peak %d in one %s (%.1f %%), %d uplinks",
		scale, start.span, start.peakInfo(bin), after.total, latest.Round(time.Millisecond), latest.Seconds()/scale, peak, bin, 100*float64(peak)/n, len(connects))
	hist := make([]int, 0, 64)
	for i := 0; i < 64; i++ {
		hist = append(hist, bins[i])
	}
	t.Logf("connects per %s after the return: %v", bin, hist)
	if peak > n/10 {
		t.Errorf("%d connects (%.0f %%) in one %s after the broker's return; want at most 10 %%", peak, 100*float64(peak)/n, bin)
	}
	if len(connects) != n {
		t.Errorf("%d clients seen, want %d", len(connects), n)
	}
}

type spreadInfo struct {
	total int
	span  time.Duration
	times []time.Duration
}

func since(connects map[string][]time.Time, from, after time.Time) spreadInfo {
	var s spreadInfo
	for _, ts := range connects {
		for _, at := range ts {
			if !after.IsZero() && !at.After(after) {
				continue
			}
			s.total++
			s.times = append(s.times, at.Sub(from))
		}
	}
	slices.Sort(s.times)
	if len(s.times) > 0 {
		s.span = (s.times[len(s.times)-1] - s.times[0]).Round(time.Millisecond)
	}
	return s
}

func (s spreadInfo) peakInfo(bin time.Duration) string {
	bins := map[int]int{}
	peak := 0
	for _, d := range s.times {
		bins[int(d/bin)]++
		peak = max(peak, bins[int(d/bin)])
	}
	return fmt.Sprintf("%d in one %s", peak, bin)
}
