package buffer

import (
	"context"
	"testing"
	"time"

	"tidegate/reading"
)

// A fresh file with the clock at 1970, after a file whose seqs went up to
// N: every record it holds and every new one gets an id above N, in order.
func TestEnsureAboveRenumbers(t *testing.T) {
	b, err := Open(t.TempDir()+"/b.db", Options{Clock: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var recs []reading.Record
	for i := range 1200 {
		recs = append(recs, reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m", Received: time.Unix(int64(i), 0), Has: reading.HasForward, Forward: float64(i), Quality: reading.QualityGood}})
	}
	recs = append(recs, reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: time.Unix(5, 0), Type: "leak", Meter: "m"}})
	if _, err := b.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	const n = 1_700_000_000_000_000
	if err := b.EnsureAbove(n); err != nil {
		t.Fatal(err)
	}
	seqs, err := b.Append(context.Background(), recs[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Read(0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1202 {
		t.Fatalf("%d records held, want 1202", len(got))
	}
	for i, r := range got[:1200] {
		if r.Seq <= n || r.Reading == nil || r.Reading.Forward != float64(i) {
			t.Fatalf("record %d: seq %d (floor %d), %+v", i, r.Seq, n, r.Reading)
		}
	}
	if ev, _ := b.ReadUrgent(0, 10); len(ev) != 1 || ev[0].Seq <= n {
		t.Fatalf("event %+v", ev)
	}
	if seqs[0] <= got[1200].Seq {
		t.Fatalf("new record %d not after the renumbered ones", seqs[0])
	}
	if err := b.EnsureAbove(n); err != nil || b.LastSeq() != seqs[0] {
		t.Fatalf("a second call changed something: %v, last %d", err, b.LastSeq())
	}
}
