package buffer

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"tidegate/reading"
)

// Journal entries live between the records but are none of them: never
// read, counted, acknowledged, thinned or evicted, kept across a reopen and
// an ack past them, gone only when a commit drops them.
func TestJournalBesideRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buf.db")
	b := openTest(t, path, Options{MaxRecords: 100, EvictTo: 0.5})
	ctx := context.Background()
	var want [][]byte
	for i := 0; i < 60; i++ {
		e := []byte(fmt.Sprintf("entry %d", i))
		want = append(want, e)
		if _, err := b.AppendWithJournal(ctx, nil, Journal{Entry: e}, readingRec("m", 3*i), readingRec("m", 3*i+1), readingRec("m", 3*i+2)); err != nil {
			t.Fatal(err)
		}
	}
	// 180 readings past MaxRecords 100: evicted and thinned around the entries.
	check := func(when string, n int) {
		t.Helper()
		got, err := b.JournalEntries()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%s: %d journal entries, want %d", when, len(got), n)
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("%s: entry %d is %q, want %q", when, i, got[i], want[i])
			}
		}
		recs, err := b.Read(0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		st := b.Stats()
		for _, r := range recs {
			if r.Kind != reading.KindReading && !(r.Kind == reading.KindEvent && r.Event.Type == "buffer_evicted") {
				t.Fatalf("%s: read a %v record %+v: a journal entry read as a record?", when, r.Kind, r.Event)
			}
		}
		if uint64(len(recs)) != st.Depth {
			t.Fatalf("%s: read %d records, Stats says %d held", when, len(recs), st.Depth)
		}
		if len(recs) > 0 && (st.FirstSeq != recs[0].Seq || b.Cursor() != recs[0].Seq-1) {
			t.Fatalf("%s: first seq %d, cursor %d; first record read is %d", when, st.FirstSeq, b.Cursor(), recs[0].Seq)
		}
		if len(recs) > 0 && st.Newest.IsZero() {
			t.Fatalf("%s: newest record has no time (the journal entry after it taken for a record?)", when)
		}
	}
	check("appended", 60)
	if st := b.Stats(); st.Evicted == 0 {
		t.Fatalf("nothing evicted: %+v", st)
	}
	b.Close()
	b = openTest(t, path, Options{MaxRecords: 100, EvictTo: 0.5})
	defer func() { b.Close() }()
	check("reopened", 60)
	recs, _ := b.Read(0, 10000)
	if err := b.AckUpTo(recs[len(recs)-1].Seq); err != nil {
		t.Fatal(err)
	}
	check("all acknowledged", 60)
	if b.Cursor() != b.Stats().LastSeq {
		t.Fatalf("cursor %d after acking all, last seq %d", b.Cursor(), b.Stats().LastSeq)
	}
	// A checkpoint: the old entries go, a new one after it stays.
	if _, err := b.AppendWithJournal(ctx, []State{{Key: "k", Value: []byte("full")}}, Journal{Drop: true}, readingRec("m", 999)); err != nil {
		t.Fatal(err)
	}
	want = [][]byte{[]byte("after")}
	if _, err := b.AppendWithJournal(ctx, nil, Journal{Entry: want[0]}); err != nil {
		t.Fatal(err)
	}
	check("dropped", 1)
	b.Close()
	b = openTest(t, path, Options{MaxRecords: 100, EvictTo: 0.5})
	check("dropped, reopened", 1)
}

// An entry costs the commit no page of its own: it lands in the records'
// last leaf, which the commit writes anyway. The same bytes as side state
// cost about two pages more (the state bucket's leaf and branch).
func TestJournalCostsNoPage(t *testing.T) {
	pages := func(journal bool) float64 {
		b := openTest(t, filepath.Join(t.TempDir(), "buf.db"), Options{hotSpan: DefaultHotSpan})
		defer b.Close()
		ctx := context.Background()
		// Side state big enough to need a branch, as the filter's does.
		for m := 0; m < 8; m++ {
			if err := b.PutState(fmt.Sprint("filter/m", m), make([]byte, 3000)); err != nil {
				t.Fatal(err)
			}
		}
		entry := make([]byte, 350) // five polls
		step := func(i int) {
			recs := []reading.Record{readingRec("m", 5*i), readingRec("m", 5*i+1), readingRec("m", 5*i+2), readingRec("m", 5*i+3), readingRec("m", 5*i+4)}
			var err error
			if journal {
				_, err = b.AppendWithJournal(ctx, nil, Journal{Entry: entry}, recs...)
			} else {
				_, err = b.AppendWithState(ctx, []State{{Key: fmt.Sprintf("filterlog/%016x", i), Value: entry}}, recs...)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 200; i++ {
			step(i)
		}
		writes := func() int64 { st := b.dbh().Stats(); return st.TxStats.GetWrite() }
		w0 := writes()
		const n = 300
		for i := 200; i < 200+n; i++ {
			step(i)
		}
		return float64(writes()-w0) / n
	}
	j, s := pages(true), pages(false)
	t.Logf("pages written a commit: %.2f with a journal entry, %.2f with the same bytes as side state", j, s)
	if j > s-1.5 {
		t.Fatalf("a journal entry costs %.2f pages a commit, side state %.2f: want about two fewer", j, s)
	}
}

// Journal entries take space like records: on a small MaxBytes they count
// against it (they cannot be evicted, so the oldest records make room), and
// Stats shows them. Before, 6 KB of journal beside 7 KB of records
// evicted nothing under MaxBytes 8000.
func TestJournalCountsAgainstMaxBytes(t *testing.T) {
	const maxBytes = 8000
	path := filepath.Join(t.TempDir(), "buf.db")
	b := openTest(t, path, Options{MaxBytes: maxBytes})
	ctx := context.Background()
	entry := make([]byte, 200)
	for i := 0; i < 40; i++ {
		if i == 12 {
			// A checkpoint: the journal so far goes.
			if _, err := b.AppendWithJournal(ctx, nil, Journal{Drop: true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.AppendWithJournal(ctx, nil, Journal{Entry: entry}, readingRec("m", 3*i), readingRec("m", 3*i+1), readingRec("m", 3*i+2)); err != nil {
			t.Fatal(err)
		}
		st := b.Stats()
		if want := uint64(len(entry)+2) * uint64(i-11); i >= 12 && st.JournalBytes != want {
			t.Fatalf("commit %d: %d journal bytes counted, want %d", i, st.JournalBytes, want)
		}
		if held := st.LiveBytes + st.JournalBytes; held > maxBytes {
			t.Fatalf("commit %d: %d bytes held (%d of records, %d of journal) past MaxBytes %d", i, held, st.LiveBytes, st.JournalBytes, maxBytes)
		}
	}
	st := b.Stats()
	if st.Evicted == 0 || st.Depth == 0 {
		t.Fatalf("%+v: want records evicted to make room for the journal, the newest kept", st)
	}
	want := st.JournalBytes
	b.Close()
	b = openTest(t, path, Options{MaxBytes: maxBytes})
	defer b.Close()
	if got := b.Stats().JournalBytes; got != want {
		t.Fatalf("reopened: %d journal bytes counted, %d before", got, want)
	}
}
