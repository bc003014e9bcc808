package uplink

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"tidegate/buffer"
	"tidegate/reading"
)

func TestEventsAheadOfBacklog(t *testing.T) {
	br := startMochi(t)
	q := openBuffer(t)
	last := fill(t, q, 5000, 10)
	evSeqs, err := q.Append(context.Background(), testEvent("burst"), testEvent("leak"))
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, br.URL(), "test")
	u, _ := New(testConfig(br.URL()), q, quietLogEntry(t))
	startUplink(t, u)
	waitFor(t, 20*time.Second, "drained", func() bool { return q.Cursor() == evSeqs[1] })
	waitFor(t, 5*time.Second, "all at the subscriber", func() bool { got, _ := sub.unique(); return uint64(len(got)) == last })
	sub.mu.Lock()
	var data []string
	for _, tp := range sub.order {
		if strings.HasSuffix(tp, "/readings") || strings.HasSuffix(tp, "/events") {
			data = append(data, tp[strings.LastIndex(tp, "/")+1:])
		}
	}
	events := append([]uint64(nil), sub.events...)
	sub.mu.Unlock()
	if len(data) < 2 || data[0] != "events" || data[1] != "events" {
		t.Fatalf("first messages %v, want the two events ahead of %d readings", data[:min(4, len(data))], last)
	}
	if len(events) != 2 || events[0] != evSeqs[0] || events[1] != evSeqs[1] {
		t.Fatalf("events %v, want %v in order", events, evSeqs)
	}
	got, _ := sub.unique()
	checkAll(t, got, last)
}

func TestBatchLimits(t *testing.T) {
	br := startMochi(t)
	q := openBuffer(t)
	sub := subscribe(t, br.URL(), "test")
	cfg := testConfig(br.URL())
	cfg.Batch = BatchConfig{MaxCount: 50, MaxBytes: 4000, MaxLatency: 400 * time.Millisecond}
	u, _ := New(cfg, q, quietLogEntry(t))
	startUplink(t, u)
	waitFor(t, 5*time.Second, "connected", u.Connected)

	// A few live readings wait for max_latency and go as one batch.
	t0 := time.Now()
	fill(t, q, 3, 3)
	waitFor(t, 5*time.Second, "3 readings", func() bool { got, _ := sub.unique(); return len(got) == 3 })
	if el := time.Since(t0); el < 300*time.Millisecond || el > 3*time.Second {
		t.Errorf("3 readings took %s, want about max_latency (400ms)", el)
	}
	// A backlog is cut by bytes before count.
	last := fill(t, q, 500, 5)
	waitFor(t, 20*time.Second, "drained", func() bool { return q.Cursor() == last })
	waitFor(t, 5*time.Second, "all at the subscriber", func() bool { got, _ := sub.unique(); return uint64(len(got)) == last })
	got, _ := sub.unique()
	checkAll(t, got, last)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	batches := sub.payloads["test/v1/gw1/readings"]
	if n := countBatch(t, batches[0]); n != 3 {
		t.Errorf("first batch has %d readings, want the 3 live ones together", n)
	}
	for _, p := range batches {
		if len(p) > 4000 {
			t.Errorf("batch of %d bytes over max_bytes 4000", len(p))
		}
		if n := countBatch(t, p); n > 50 || n == 0 {
			t.Errorf("batch of %d readings", n)
		}
	}
	if len(batches) < int(last*420/4000) {
		t.Errorf("%d batches for %d readings: byte limit not applied", len(batches), last)
	}
}

func countBatch(t *testing.T, p []byte) int {
	var b struct{ Batch []json.RawMessage }
	if err := json.Unmarshal(p, &b); err != nil {
		t.Fatal(err)
	}
	return len(b.Batch)
}

// TestInflightBounded: with every PUBACK withheld, exactly max_inflight
// messages (plus the birth status) leave the gateway.
func TestInflightBounded(t *testing.T) {
	br := startMochi(t)
	px := startProxy(t, br.Addr())
	px.SwallowPubacks(true)
	q := openBuffer(t)
	fill(t, q, 5000, 5)
	cfg := testConfig(px.URL())
	cfg.MaxInflight = 3
	cfg.AckTimeout = time.Minute
	u, _ := New(cfg, q, quietLogEntry(t))
	startUplink(t, u)
	waitFor(t, 5*time.Second, "window sent", func() bool { return px.Swallowed() >= 4 })
	time.Sleep(500 * time.Millisecond)
	if n := px.Swallowed(); n != 4 {
		t.Fatalf("%d messages unacknowledged in flight, want max_inflight 3 + birth", n)
	}
	if s := u.Stats(); s.Inflight != 3 || q.Cursor() != 0 {
		t.Fatalf("stats %+v cursor %d", s, q.Cursor())
	}
}

// undecodable wraps the real buffer so that Read reports one stored reading
// as the buffer does for a record that no longer decodes: a
// buffer_undecodable event under the record's seq, absent from ReadUrgent.
type undecodable struct {
	*buffer.Buffer
	seq uint64
}

func (q undecodable) Read(after uint64, max int) ([]reading.Record, error) {
	recs, err := q.Buffer.Read(after, max)
	for i := range recs {
		if recs[i].Seq == q.seq {
			recs[i] = reading.Record{Seq: q.seq, Kind: reading.KindEvent, Event: &reading.Event{Type: "buffer_undecodable"}}
		}
	}
	return recs, err
}

func TestUndecodableRecordIsSentAndAcked(t *testing.T) {
	br := startMochi(t)
	b := openBuffer(t)
	last := fill(t, b, 500, 5)
	sub := subscribe(t, br.URL(), "test")
	u, _ := New(testConfig(br.URL()), undecodable{b, 250}, quietLogEntry(t))
	startUplink(t, u)
	waitFor(t, 10*time.Second, "fully acknowledged", func() bool { return b.Cursor() == last })
	waitFor(t, 5*time.Second, "the event", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.events) == 1 && sub.events[0] == 250
	})
	// Acknowledged by the broker is not yet delivered to this subscriber.
	waitFor(t, 5*time.Second, "the readings", func() bool { got, _ := sub.unique(); return len(got) >= int(last)-1 })
	got, _ := sub.unique()
	if len(got) != int(last)-1 {
		t.Fatalf("%d readings, want %d", len(got), last-1)
	}
}
