package buffer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"tidegate/buffer"
	"tidegate/reading"
)

// The life of a record: a driver appends, the uplink reads, sends and
// acknowledges.
func Example() {
	dir, _ := os.MkdirTemp("", "buffer-example")
	defer os.RemoveAll(dir)
	b, err := buffer.Open(filepath.Join(dir, "buffer.db"), buffer.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	seqs, _ := b.Append(context.Background(),
		reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m-0001", Received: at, Forward: 1234.5, Has: reading.HasForward}},
		reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: at, Meter: "m-0001", Type: "leak"}},
	)
	// A new file numbers from the clock, so that a gateway whose file was
	// lost never reuses a seq: print them relative to the first.
	base := b.Stats().SeqBase
	fmt.Println("appended", seqs[0]-base, seqs[1]-base)

	urgent, _ := b.ReadUrgent(0, 100) // events first
	fmt.Println("urgent", urgent[0].Seq-base, urgent[0].Event.Type)
	_ = b.Ack(urgent[0].Seq)

	recs, _ := b.Read(b.Cursor(), 100)
	fmt.Println("backlog", len(recs), recs[0].Seq-base, recs[0].Reading.Meter, recs[0].Reading.Forward)
	_ = b.AckUpTo(recs[len(recs)-1].Seq)

	s := b.Stats()
	fmt.Println("held", s.Depth, "cursor", s.Cursor-base, "acked", s.Acked)
	// Output:
	// appended 1 2
	// urgent 2 leak
	// backlog 1 1 m-0001 1234.5
	// held 0 cursor 2 acked 2
}
