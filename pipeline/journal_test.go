package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tidegate/buffer"
	"tidegate/filter"
	"tidegate/reading"
)

// firstCommit remembers what the first AppendWithJournal carried.
type firstCommit struct {
	Store
	once   sync.Once
	states []buffer.State
	jour   buffer.Journal
}

func (f *firstCommit) AppendWithJournal(ctx context.Context, st []buffer.State, j buffer.Journal, recs ...reading.Record) ([]uint64, error) {
	f.once.Do(func() { f.states, f.jour = append([]buffer.State(nil), st...), j })
	return f.Store.AppendWithJournal(ctx, st, j, recs...)
}

// A file from the version before the buffer's journal: full states as of
// a checkpoint, then one state key filterlog/<hex> per poll since, each
// written with that poll's records (what that version committed). The
// filter resumes from it exactly: the records stored after the restart are
// the ones a filter that never stopped releases. The first commit after it
// is a checkpoint that deletes those keys.
func TestOldLayoutJournalReplayed(t *testing.T) {
	t.Run("state_keys", func(t *testing.T) { oldJournalReplayed(t, false) })
	// And the buffer journal's entries as the version before pollcodec.go
	// wrote them (uvarint length + buffer.Encode per poll).
	t.Run("entries_v0", func(t *testing.T) { oldJournalReplayed(t, true) })
}

func oldJournalReplayed(t *testing.T, entries bool) {
	const meter, ckptAt, logged, after = "m", 40, 25, 30
	path := filepath.Join(t.TempDir(), "buf.db")
	ctx := context.Background()
	encode := func(recs []reading.Record) []string {
		var out []string
		for i := range recs {
			r := recs[i]
			r.Seq = 0
			v, err := buffer.Encode(&r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(v))
		}
		return out
	}
	records := func(o *filter.Output) []reading.Record {
		var out []reading.Record
		for i := range o.Readings {
			r := o.Readings[i]
			out = append(out, reading.Record{Kind: reading.KindReading, Reading: &r})
		}
		for i := range o.Days {
			d := o.Days[i]
			out = append(out, reading.Record{Kind: reading.KindSummary, Summary: &d})
		}
		for i := range o.Events {
			e := o.Events[i]
			out = append(out, reading.Record{Kind: reading.KindEvent, Event: &e})
		}
		return out
	}
	// The reference: one filter that sees every poll.
	ref := filter.New(filter.Config{})
	var want []reading.Record
	for i := 0; i < ckptAt+logged+after; i++ {
		var o filter.Output
		ref.PushTo(&o, poll(meter, i))
		want = append(want, records(&o)...)
	}
	last := ref.Flush()
	want = append(want, records(&last)...)

	// The old version's file.
	buf := openBuf(t, path)
	old := filter.New(filter.Config{})
	for i := 0; i < ckptAt+logged; i++ {
		var o filter.Output
		r := poll(meter, i)
		old.PushTo(&o, r)
		var states []buffer.State
		if i == ckptAt-1 {
			st, err := old.State(meter)
			if err != nil {
				t.Fatal(err)
			}
			states = append(states, buffer.State{Key: StateKey(meter), Value: st})
		}
		var j buffer.Journal
		if i >= ckptAt {
			v, err := buffer.Encode(&reading.Record{Kind: reading.KindReading, Reading: &r})
			if err != nil {
				t.Fatal(err)
			}
			if entries {
				j.Entry = append(binary.AppendUvarint(nil, uint64(len(v))), v...)
			} else {
				states = append(states, buffer.State{Key: fmt.Sprintf("%s%016x", journalPrefix, i), Value: v})
			}
		}
		if _, err := buf.AppendWithJournal(ctx, states, j, records(&o)...); err != nil {
			t.Fatal(err)
		}
	}
	ks, _ := buf.States(journalPrefix)
	es, _ := buf.JournalEntries()
	if entries && len(es) != logged || !entries && len(ks) != logged {
		t.Fatalf("%d old journal keys and %d entries written, want %d", len(ks), len(es), logged)
	}
	buf.Close()

	buf = openBuf(t, path)
	defer buf.Close()
	fc := &firstCommit{Store: buf}
	p := New(fc, Options{Filter: filter.New(filter.Config{}), Meters: []string{meter}, Log: quietLog()})
	for i := ckptAt + logged; i < ckptAt+logged+after; i++ {
		r := poll(meter, i)
		p.Ingest(reading.Record{Kind: reading.KindReading, Reading: &r})
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := encode(readAll(t, buf))
	w := encode(want)
	if len(got) != len(w) {
		t.Fatalf("%d records stored, a filter that never stopped releases %d", len(got), len(w))
	}
	for i := range w {
		if got[i] != w[i] {
			g, _ := buffer.Decode([]byte(got[i]))
			x, _ := buffer.Decode([]byte(w[i]))
			t.Fatalf("record %d differs from a filter that never stopped:\n got %+v\nwant %+v", i, g.Reading, x.Reading)
		}
	}
	deleted := 0
	for _, s := range fc.states {
		if strings.HasPrefix(s.Key, journalPrefix) && s.Value == nil {
			deleted++
		}
	}
	if entries {
		deleted = logged // no keys to delete; Drop removes the entries
	}
	if deleted != logged || !fc.jour.Drop || !bytes.Equal(nil, fc.jour.Entry) {
		t.Fatalf("first commit after the restart deletes %d old journal keys (want %d), drop %v: not the checkpoint", deleted, logged, fc.jour.Drop)
	}
	ks, _ = buf.States(journalPrefix)
	es, _ = buf.JournalEntries()
	if len(ks) != 0 || len(es) != 0 {
		t.Fatalf("%d old journal keys and %d entries left after the checkpoint", len(ks), len(es))
	}
}
