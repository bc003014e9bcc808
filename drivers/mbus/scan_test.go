package mbus

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

func randomMeters(n int, seed uint64) []*fakeMeter {
	rng := rand.New(rand.NewPCG(seed, 1))
	seen := map[uint32]bool{}
	var out []*fakeMeter
	for len(out) < n {
		id := rng.Uint32N(100000000)
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, &fakeMeter{primary: byte(len(out) + 1), lastFCB: -1, telegrams: [][]byte{volumeRecord},
			sec: Secondary{ID: id, Manufacturer: 0x2C2D, Version: byte(rng.UintN(256)), Medium: 0x07}})
	}
	return out
}

func TestScanSecondary(t *testing.T) {
	meters := randomMeters(6, 7)
	// Two meters sharing an id, told apart only by a manufacturer nibble above 9,
	// which a search over digits alone would never separate.
	meters = append(meters,
		&fakeMeter{lastFCB: -1, telegrams: [][]byte{volumeRecord}, sec: Secondary{ID: 55550000, Manufacturer: 0xA5B1, Version: 0x01, Medium: 0x07}},
		&fakeMeter{lastFCB: -1, telegrams: [][]byte{volumeRecord}, sec: Secondary{ID: 55550000, Manufacturer: 0xB5B1, Version: 0x01, Medium: 0x07}})
	m := newFakeBus(t, 9600, meters...).open(t, Options{Timeout: 200 * time.Millisecond, Guard: 10 * time.Millisecond})
	var last ScanProgress
	calls := 0
	found, err := ScanSecondary(context.Background(), m, func(p ScanProgress) {
		last = p
		calls++
		if os.Getenv("SCANDEBUG") != "" && p.Pattern[0] == '2' {
			t.Logf("%+v", p)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, fm := range meters {
		want = append(want, fm.sec.String())
	}
	for _, s := range found {
		got = append(got, s.String())
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("found %v\nwant %v", got, want)
	}
	if calls == 0 || last.Found != len(meters) || int64(last.Probes) != m.Counters().Selects.Load() {
		t.Fatalf("progress: %d calls, last %+v, selects %d", calls, last, m.Counters().Selects.Load())
	}
}

func TestScanPrimary(t *testing.T) {
	a := &fakeMeter{primary: 2, lastFCB: -1}
	b := &fakeMeter{primary: 7, lastFCB: -1}
	c := &fakeMeter{primary: 7, lastFCB: -1} // duplicate address
	m := newFakeBus(t, 9600, a, b, c).open(t, Options{Timeout: 60 * time.Millisecond, Guard: 10 * time.Millisecond})
	n := 0
	got, err := ScanPrimary(context.Background(), m, 0, 9, func(ScanProgress) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	want := []PrimaryResult{{Address: 2}, {Address: 7, Collision: true}}
	if !slices.Equal(got, want) || n != 10 {
		t.Fatalf("got %v (%d progress calls), want %v", got, n, want)
	}
	if _, err := ScanPrimary(context.Background(), m, 0, 251, nil); err == nil {
		t.Fatal("range beyond 250 accepted")
	}
}
