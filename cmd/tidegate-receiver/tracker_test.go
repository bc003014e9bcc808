package main

import (
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := newTracker("gw")
	tr.start(100)
	for _, s := range []uint64{101, 102, 102, 101} {
		tr.record(s, now)
	}
	if tr.acked() != 102 {
		t.Fatalf("acked %d, want 102", tr.acked())
	}
	// 103 comes late (an event overtook it): not a gap.
	tr.record(104, now)
	if g := tr.gaps(now.Add(time.Second), 5*time.Second); len(g) != 0 || tr.acked() != 102 {
		t.Fatalf("gaps %v acked %d", g, tr.acked())
	}
	if !tr.record(103, now.Add(2*time.Second)) || tr.acked() != 104 {
		t.Fatalf("after 103: acked %d", tr.acked())
	}
	// 105-107 evicted by the gateway, 108-109 lost, 110 arrives.
	tr.evict("105-107", now)
	tr.record(110, now)
	if tr.acked() != 107 {
		t.Fatalf("after eviction: acked %d", tr.acked())
	}
	if g := tr.gaps(now.Add(10*time.Second), 5*time.Second); len(g) != 1 || g[0] != (gap{108, 109}) || tr.acked() != 110 {
		t.Fatalf("gaps %v acked %d", g, tr.acked())
	}
	if tr.record(109, now) {
		t.Fatal("a record below the acked seq counted as new")
	}
}
