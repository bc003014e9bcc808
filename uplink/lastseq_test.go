package uplink

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"tidegate/buffer"
)

// A gateway whose buffer file was lost starts on a fresh one with the
// clock at 1970 (no real-time clock, no NTP yet): its seqs start at 1,
// far below the N its old file reached. The old process died (the broker
// published its will), so only the retained status knows N. Every id the
// new file sends is above N. (Before: the new records went out as gw1:1,
// gw1:2, ... and a receiver that had them dropped them as duplicates.)
func TestFreshFileAt1970NumbersAboveLastSeq(t *testing.T) {
	br := startMochi(t)
	px := startProxy(t, br.Addr())
	sub := subscribe(t, br.URL(), "test")

	old, err := buffer.Open(t.TempDir()+"/old.db", buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	n := fill(t, old, 300, 3)
	u1, err := New(testConfig(px.URL()), old, quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	stop1 := startUplink(t, u1)
	waitFor(t, 10*time.Second, "the old file delivered", func() bool { return old.Cursor() >= n })
	// The box dies: the connection breaks without a DISCONNECT and the
	// broker publishes the will, retained.
	px.Refuse(true)
	px.CutAll()
	status := newTopics("test", "gw1").status
	waitFor(t, 10*time.Second, "the will retained", func() bool {
		var w wireStatus
		return json.Unmarshal([]byte(retained(t, br.URL(), status)), &w) == nil && w.State == "offline"
	})
	stop1()
	var will wireStatus
	json.Unmarshal([]byte(retained(t, br.URL(), status)), &will)
	if will.LastSeq < n {
		t.Fatalf("the will's last_seq %d is below the highest seq published %d", will.LastSeq, n)
	}

	// The same file after the crash: it sent those ids itself, so its
	// records keep them (renumbering would make duplicates no receiver can
	// drop).
	again, err := old.Append(context.Background(), testReading("m-000", 9, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	u0, err := New(testConfig(br.URL()), old, quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	stop0 := startUplink(t, u0)
	waitFor(t, 10*time.Second, "the old file's new record delivered", func() bool { return old.Cursor() >= again[0] })
	stop0()
	if got, _ := sub.unique(); got[len(got)-1] != n+1 || again[0] != n+1 {
		t.Fatalf("the same file's next record went out as %d (appended as %d), want %d", got[len(got)-1], again[0], n+1)
	}

	fresh, err := buffer.Open(t.TempDir()+"/fresh.db", buffer.Options{Clock: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	seqs, err := fresh.Append(context.Background(), testReading("m-000", 1, time.Now()), testReading("m-001", 2, time.Now()), testEvent("leak"))
	if err != nil {
		t.Fatal(err)
	}
	if seqs[0] > n {
		t.Fatalf("the fresh file numbers from %d: not a clock at 1970", seqs[0])
	}
	before, _ := sub.unique()
	u2, err := New(testConfig(br.URL()), fresh, quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u2)
	waitFor(t, 10*time.Second, "the fresh file delivered", func() bool { got, _ := sub.unique(); return len(got) >= len(before)+2 })
	waitFor(t, 10*time.Second, "the event delivered", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.events) > 0
	})
	got, _ := sub.unique()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, id := range append(got[len(before):], sub.events...) {
		if id <= will.LastSeq {
			t.Errorf("id gw1:%d sent from the fresh file is not above last_seq %d", id, will.LastSeq)
		}
	}
	t.Logf("old file up to %d, will's last_seq %d, fresh file sent %v and events %v", n, will.LastSeq, got[len(before):], sub.events)
}
