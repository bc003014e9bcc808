package uplink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"tidegate/buffer"
	"tidegate/reading"
)

// faultyQueue is the real buffer with errors injected at random points of
// Read, ReadUrgent, Ack and Append: an EIO, a full disk, a damaged page.
// Each injected call fails before it reaches the buffer, so it did nothing.
type faultyQueue struct {
	*buffer.Buffer
	rate     float64 // probability of a failure per call
	on       atomic.Bool
	mu       sync.Mutex
	rnd      *rand.Rand
	injected map[string]int
	calls    map[string]int
}

func newFaultyQueue(b *buffer.Buffer, rate float64) *faultyQueue {
	f := &faultyQueue{Buffer: b, rate: rate, rnd: rand.New(rand.NewPCG(21, 21)), injected: map[string]int{}, calls: map[string]int{}}
	f.on.Store(true)
	return f
}

var injectedErrs = []error{syscall.EIO, buffer.ErrFull, fmt.Errorf("page 12: %w", buffer.ErrCorrupt)}

func (f *faultyQueue) fault(op string) error {
	if !f.on.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rate := f.rate
	if op == "ack" {
		rate *= 5 // acks are few: the acker takes many records in one
	}
	// Each op's second call fails whatever the dice say: on a loaded
	// machine the acker takes more records in one ack, and a test that
	// injected nothing into acks would prove nothing of them.
	f.calls[op]++
	if f.rnd.Float64() >= rate && f.calls[op] != 2 {
		return nil
	}
	f.injected[op]++
	return fmt.Errorf("injected on %s: %w", op, injectedErrs[f.rnd.IntN(len(injectedErrs))])
}

func (f *faultyQueue) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected[op]
}

func (f *faultyQueue) Read(after uint64, max int) ([]reading.Record, error) {
	if err := f.fault("read"); err != nil {
		return nil, err
	}
	return f.Buffer.Read(after, max)
}

func (f *faultyQueue) ReadUrgent(after uint64, max int) ([]reading.Record, error) {
	if err := f.fault("read_urgent"); err != nil {
		return nil, err
	}
	return f.Buffer.ReadUrgent(after, max)
}

func (f *faultyQueue) Ack(seqs ...uint64) error {
	if err := f.fault("ack"); err != nil {
		return err
	}
	return f.Buffer.Ack(seqs...)
}

func (f *faultyQueue) Append(ctx context.Context, recs ...reading.Record) ([]uint64, error) {
	if err := f.fault("append"); err != nil {
		return nil, err
	}
	return f.Buffer.Append(ctx, recs...)
}

// Queue errors at random points of Read, Ack and Append while records keep
// arriving: the uplink restarts its sending loop after each and delivers
// everything, in order, and says so in Stats. (Before: Run returned on the
// first Read or Ack error and nothing was sent again.)
func TestQueueFaultsAtRandom(t *testing.T) {
	br := startMochi(t)
	sub := subscribe(t, br.URL(), "test")
	q := newFaultyQueue(openBuffer(t), 0.03)
	cfg := testConfig(br.URL())
	cfg.Batch.MaxCount = 50
	cfg.Batch.MaxLatency = 10 * time.Millisecond
	cfg.RestartMin, cfg.RestartMax = 10*time.Millisecond, 200*time.Millisecond
	log, logs := quietLog(t)
	u, err := New(cfg, q, log)
	if err != nil {
		t.Fatal(err)
	}
	stop := startUplink(t, u)

	// The pipeline's part: append in chunks, retrying a failed append as
	// the pipeline owner does (a failed append stored nothing).
	const n, chunk = 3000, 25
	now := time.Now()
	for i := 0; i < n; i += chunk {
		recs := make([]reading.Record, chunk)
		for j := range recs {
			recs[j] = testReading(fmt.Sprintf("m-%d", j%5), i+j, now)
		}
		for {
			if _, err := q.Append(context.Background(), recs...); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if i%500 == 0 {
			time.Sleep(20 * time.Millisecond) // let the uplink catch up now and then: acks come between appends
		}
	}
	waitFor(t, 30*time.Second, "every record delivered", func() bool {
		got, _ := sub.unique()
		return len(got) >= n
	})
	got, dups := sub.unique()
	checkAll(t, got, n)
	q.on.Store(false)
	waitFor(t, 10*time.Second, "the buffer drained", func() bool { return q.Cursor() >= n })
	s := u.Stats()
	t.Logf("injected: read %d, read_urgent %d, ack %d, append %d; restarts %d; duplicates %d", q.count("read"), q.count("read_urgent"), q.count("ack"), q.count("append"), s.Restarts, dups)
	if q.count("ack") == 0 || q.count("read") == 0 || q.count("append") == 0 {
		t.Fatal("the test injected no fault on some call; raise the rate")
	}
	if s.Restarts == 0 || s.RestartError == "" {
		t.Errorf("no restart counted: %+v", s)
	}
	waitFor(t, 5*time.Second, "state running", func() bool { return u.Stats().State == StateRunning })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v; log:\n%s", err, logs)
	}
}

// A panic in the sending loop is a bug: logged with its stack, and the loop
// starts again.
func TestPumpPanicRestarts(t *testing.T) {
	br := startMochi(t)
	sub := subscribe(t, br.URL(), "test")
	b := openBuffer(t)
	last := fill(t, b, 500, 3)
	q := &panickyQueue{Queue: b, left: 3}
	cfg := testConfig(br.URL())
	cfg.RestartMin, cfg.RestartMax = 10*time.Millisecond, 100*time.Millisecond
	log, logs := quietLog(t)
	u, err := New(cfg, q, log)
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)
	waitFor(t, 10*time.Second, "every record delivered", func() bool { got, _ := sub.unique(); return uint64(len(got)) >= last })
	s := u.Stats()
	if s.Restarts != 3 || !strings.Contains(s.RestartError, ErrPanic.Error()) {
		t.Errorf("stats %+v", s)
	}
	if !strings.Contains(logs.String(), "goroutine") {
		t.Error("no stack logged")
	}
}

type panickyQueue struct {
	Queue
	mu   sync.Mutex
	left int
}

func (p *panickyQueue) Read(after uint64, max int) ([]reading.Record, error) {
	p.mu.Lock()
	boom := p.left > 0
	p.left--
	p.mu.Unlock()
	if boom {
		panic("a bug in the queue")
	}
	return p.Queue.Read(after, max)
}

// The service acks the highest id it has stored; an event goes out ahead of
// a readings backlog, so that id is the event's, far above readings never
// sent. The ack is refused and deletes nothing; an ack of what was sent
// still deletes it. PUBACKs are withheld so the pump cannot get past its
// first window. (Before: AckUpTo(event) emptied the buffer: 20,001 records
// deleted, 600 sent.)
func TestAppAckBeyondPublishedRefused(t *testing.T) {
	br := startMochi(t)
	px := startCutProxy(t, br.Addr())
	px.swallow.Store(true)
	q := openBuffer(t)
	fill(t, q, 20000, 10)
	seqs, err := q.Append(context.Background(), testEvent("leak"))
	if err != nil {
		t.Fatal(err)
	}
	event := seqs[0]
	sub := subscribe(t, br.URL(), "test")
	cfg := testConfig(px.URL())
	cfg.Ack = AckApplication
	cfg.AckTimeout = 10 * time.Minute
	u, err := New(cfg, q, quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)
	waitFor(t, 10*time.Second, "the event and a window of readings at the broker", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.events) > 0 && len(sub.ids) >= (cfg.withDefaults().MaxInflight-1)*DefaultMaxCount
	})
	svc := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("svc"))
	if tok := svc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer svc.Disconnect(50)
	ackTopic := newTopics(cfg.TopicPrefix, cfg.Gateway).ack
	waitFor(t, 10*time.Second, "the ack subscription", func() bool {
		svc.Publish(ackTopic, 1, false, fmt.Sprintf(`{"id":"gw1:%d"}`, event)).Wait()
		s := u.Stats()
		return s.AppAcksRefused > 0 || s.AppAcks > 0
	})
	time.Sleep(100 * time.Millisecond) // an ack that was taken commits its delete
	got, _ := sub.unique()
	st := q.Stats()
	t.Logf("readings at the broker %d, buffer depth %d of 20001, acks refused %d", len(got), st.Depth, u.Stats().AppAcksRefused)
	if st.Depth != 20001 {
		t.Fatalf("an ack of the event's id deleted %d records; %d readings were sent", 20001-st.Depth, len(got))
	}
	// An ack of the highest reading received is within what was sent.
	high := got[len(got)-1]
	svc.Publish(ackTopic, 1, false, fmt.Sprintf(`{"seq":%d}`, high)).Wait()
	waitFor(t, 10*time.Second, "the sent readings deleted", func() bool { return q.Stats().Depth == 20001-high })
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("uplink: ack 3 records: %w", buffer.ErrFull), "full"},
		{fmt.Errorf("uplink: read: page 4: %w", buffer.ErrCorrupt), "corrupt"},
		{fmt.Errorf("uplink: read: %w", syscall.EIO), "transient"},
		{fmt.Errorf("%w: boom", ErrPanic), "panic"},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
}
