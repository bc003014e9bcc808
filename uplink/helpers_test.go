package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/reading"
)

func openBuffer(t testing.TB) *buffer.Buffer {
	t.Helper()
	// Seqs from 1 (a fresh file otherwise numbers from the clock), so the
	// tests can count them.
	b, err := buffer.Open(t.TempDir()+"/buffer.db", buffer.Options{Clock: func() time.Time { return time.UnixMicro(0) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func testReading(meter string, i int, at time.Time) reading.Record {
	return reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{
		Meter: meter, Received: at, MeterTime: at.Add(-time.Second),
		Has:     reading.HasForward | reading.HasReverse | reading.HasNet | reading.HasFlow | reading.HasTemperature | reading.HasMeterTime,
		Forward: 100 + float64(i)*0.001, Reverse: 0.5, Net: 99.5 + float64(i)*0.001, Flow: 0.36, Temperature: 11.5,
		Status: reading.StatusLeak, Quality: reading.QualityGood,
		Filter: &reading.Filtered{Start: at.Add(-time.Minute), Consumption: 0.001, Phantom: 0.0002, Flags: reading.FlagSelfRotation},
	}}
}

// fill appends n readings spread over meters, in chunks, and returns the
// last seq.
func fill(t testing.TB, q *buffer.Buffer, n, meters int) uint64 {
	t.Helper()
	now := time.Now()
	var last uint64
	for i := 0; i < n; {
		k := min(5000, n-i)
		recs := make([]reading.Record, k)
		for j := range recs {
			recs[j] = testReading(fmt.Sprintf("m-%03d", (i+j)%meters), i+j, now)
		}
		seqs, err := q.Append(context.Background(), recs...)
		if err != nil {
			t.Fatal(err)
		}
		last = seqs[len(seqs)-1]
		i += k
	}
	return last
}

func testEvent(typ string) reading.Record {
	return reading.Record{Kind: reading.KindEvent, Event: &reading.Event{
		Time: time.Now(), Meter: "m-001", Type: typ, Message: "test event", Attrs: map[string]string{"k": "v"}}}
}

func quietLog(t testing.TB) (*logrus.Entry, *syncBuf) {
	l := logrus.New()
	buf := &syncBuf{}
	l.SetOutput(buf)
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l), buf
}

func quietLogEntry(t testing.TB) *logrus.Entry { l, _ := quietLog(t); return l }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testConfig(url string) Config {
	return Config{Broker: url, Gateway: "gw1", TopicPrefix: "test",
		Batch: BatchConfig{MaxLatency: 50 * time.Millisecond}, ReconnectMax: time.Second,
		ReconnectJitter: -1, ConnectGap: -1, AckTimeout: 5 * time.Second, RetainedWait: 200 * time.Millisecond}
}

// startUplink runs u until the test ends and returns a func that stops it
// and reports Run's error.
func startUplink(t testing.TB, u *Uplink) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = fmt.Errorf("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// collector is a test subscriber on <prefix>/#.
type collector struct {
	mu       sync.Mutex
	ids      []uint64 // reading seqs in arrival order, duplicates included
	events   []uint64
	order    []string // topics in arrival order
	payloads map[string][][]byte
	status   []string
}

func subscribe(t testing.TB, url, prefix string) *collector {
	t.Helper()
	c := &collector{payloads: map[string][][]byte{}}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("sub-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOrderMatters(true)
	o.SetOnConnectHandler(func(cl paho.Client) {
		cl.Subscribe(prefix+"/#", 1, func(_ paho.Client, m paho.Message) { c.add(m.Topic(), m.Payload()) })
	})
	cl := paho.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	waitFor(t, 5*time.Second, "subscription", func() bool {
		// A retained probe round trip proves the subscription is live.
		cl.Publish(prefix+"/probe", 1, false, "x").Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.payloads[prefix+"/probe"]) > 0
	})
	t.Cleanup(func() { cl.Disconnect(50) })
	return c
}

func (c *collector) add(topic string, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order = append(c.order, topic)
	c.payloads[topic] = append(c.payloads[topic], append([]byte(nil), p...))
	switch {
	case strings.HasSuffix(topic, "/readings"):
		var b struct {
			Batch []struct {
				ID  string `json:"id"`
				Seq uint64 `json:"seq"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(p, &b); err == nil {
			for _, r := range b.Batch {
				c.ids = append(c.ids, r.Seq)
			}
		}
	case strings.HasSuffix(topic, "/events"):
		var e struct{ Seq uint64 }
		if json.Unmarshal(p, &e) == nil {
			c.events = append(c.events, e.Seq)
		}
	case strings.HasSuffix(topic, "/status"):
		c.status = append(c.status, string(p))
	}
}

// unique returns the reading seqs after dropping duplicates, keeping first
// arrivals, and the number of duplicates dropped.
func (c *collector) unique() ([]uint64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[uint64]bool{}
	var out []uint64
	for _, id := range c.ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, len(c.ids) - len(out)
}

// waitFor polls ok until it holds. d is what the wait takes on an idle
// machine; the deadline is several times that, because a loaded machine (CI
// beside other jobs, -race) is slower and a deadline is only there so that a
// broken test ends: passing returns as soon as ok holds.
func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	d = max(4*d, 20*time.Second)
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkAll asserts that seqs 1..n arrived, each once after dedup, in order.
func checkAll(t testing.TB, got []uint64, n uint64) {
	t.Helper()
	if uint64(len(got)) != n {
		t.Fatalf("got %d distinct readings, want %d", len(got), n)
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("reading %d has seq %d: out of order or missing", i, s)
		}
	}
}

var _ = strconv.Itoa
