package mbus

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"
)

// foundStrings is the sorted text form of a scan's result.
func foundStrings(found []Secondary) []string {
	var out []string
	for _, s := range found {
		out = append(out, s.String())
	}
	slices.Sort(out)
	return out
}

func meterStrings(meters []*fakeMeter) []string {
	var out []string
	for _, m := range meters {
		out = append(out, m.sec.String())
	}
	slices.Sort(out)
	return out
}

// TestLogicScanNoPhantom: two meters whose E5s merge into one and whose
// answers to the read that follows AND into a frame with a valid checksum
// (on the field bus 54851302 and 54985560 became 54801100) must be found
// both, and the merged id must not be listed.
func TestLogicScanNoPhantom(t *testing.T) {
	mk := func(primary byte, id uint32) *fakeMeter {
		return &fakeMeter{primary: primary, lastFCB: -1, telegrams: [][]byte{volumeRecord},
			sec: Secondary{ID: id, Manufacturer: 0x2C2D, Version: 0x01, Medium: 0x07}}
	}
	meters := []*fakeMeter{mk(1, 54851302), mk(3, 54985560), mk(5, 12345678), mk(6, 70000001)}
	b := &memBus{meters: meters, mergeAcks: true}
	// The one-in-256 case, made certain: the merged frame's checksum holds.
	b.fault = func(_ int, _, ans []byte) []event {
		if len(ans) > 6 && ans[0] == 0x68 {
			var sum byte
			for _, c := range ans[4 : len(ans)-2] {
				sum += c
			}
			ans[len(ans)-2] = sum
		}
		if ans == nil {
			return nil
		}
		return []event{got(ans...)}
	}
	m, _ := memMaster(t, b, Options{})
	var rejected []string
	found, err := ScanSecondary(context.Background(), m, func(p ScanProgress) {
		if p.Rejected != nil {
			rejected = append(rejected, p.Rejected.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := foundStrings(found), meterStrings(meters); !slices.Equal(got, want) {
		t.Fatalf("found %v\nwant %v", got, want)
	}
	phantom := Secondary{ID: 54801100, Manufacturer: 0x2C2D, Version: 0x01, Medium: 0x07}.String()
	if !slices.Contains(rejected, phantom) || m.Counters().Phantoms.Load() == 0 {
		t.Fatalf("rejected %v, phantoms %d: want %s noted", rejected, m.Counters().Phantoms.Load(), phantom)
	}
}

// TestLogicScanLateE5: an E5 that comes after its selection's window is
// drained with it, never taken for the next selection's answer, and the
// late selection is asked again with a longer window, so its subtree is
// not missed.
func TestLogicScanLateE5(t *testing.T) {
	meters := randomMeters(12, 5)
	late := AllWild()
	late[0] = 1
	meters = append(meters, &fakeMeter{primary: 40, lastFCB: -1, telegrams: [][]byte{volumeRecord},
		sec: Secondary{ID: 12345678, Manufacturer: 0x2C2D, Version: 0x01, Medium: 0x07}})
	for _, fm := range meters[:len(meters)-1] {
		// Keep 1xxxxxxx to the one meter and 2xxxxxxx empty.
		if d := fm.sec.ID / 10000000; d == 1 || d == 2 {
			fm.sec.ID += 20000000
		}
	}
	lateReq := selectFrame(t, late)
	done := false
	b := &memBus{meters: meters}
	var l *memLine
	retryAt := -1
	b.fault = func(_ int, req, ans []byte) []event {
		if bytes.Equal(req, lateReq) {
			if !done {
				done = true
				return []event{silence, {data: ans, late: true}}
			}
			retryAt = len(l.budgets)
		}
		if ans == nil {
			return nil
		}
		return []event{got(ans...)}
	}
	l = newMemLine(2400, b.respond)
	m := NewMaster(l, Options{}, nil)
	results := map[string][]ScanProgress{}
	found, err := ScanSecondary(context.Background(), m, func(p ScanProgress) {
		results[p.Pattern] = append(results[p.Pattern], p)
	})
	if err != nil {
		t.Fatal(err)
	}
	next := AllWild()
	next[0] = 2
	if r := results[next.String()]; len(r) != 1 || r[0].Result != ProbeNone {
		t.Fatalf("select %s after the late E5: %+v, want one, silent", next, r)
	}
	if got, want := foundStrings(found), meterStrings(meters); !slices.Equal(got, want) {
		t.Fatalf("found %v\nwant %v", got, want)
	}
	if r := results[late.String()]; len(r) != 1 || !r[0].Retried || r[0].Result != ProbeOne {
		t.Fatalf("select %s: %+v, want retried and one meter", late, r)
	}
	if m.Counters().Retries.Load() != 1 || m.Counters().Late.Load() != 1 {
		t.Fatalf("retries %d, late %d, want 1, 1", m.Counters().Retries.Load(), m.Counters().Late.Load())
	}
	// The retry's window: the first read after it was given more than
	// the answer timeout (the in-memory line records each read's budget).
	if retryAt < 0 || retryAt >= len(l.budgets) || l.budgets[retryAt] <= m.Options().Timeout+time.Duration(len(lateReq))*l.cfg.CharTime() {
		t.Fatalf("retry window: budget index %d of %d, want above %v", retryAt, len(l.budgets), m.Options().Timeout)
	}
}

// TestLogicScanCost64: the price of the checks, in selections, on a bus
// of 64 random ids (logged; bound: the README's figure of at most ~5.2
// selects a meter on the real bus).
func TestLogicScanCost64(t *testing.T) {
	for _, merge := range []bool{false, true} {
		meters := randomMeters(64, 17)
		m, _ := memMaster(t, &memBus{meters: meters, mergeAcks: merge}, Options{})
		found, err := ScanSecondary(context.Background(), m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := foundStrings(found), meterStrings(meters); !slices.Equal(got, want) {
			t.Fatalf("merged E5s %v: found %v\nwant %v", merge, got, want)
		}
		sel := m.Counters().Selects.Load()
		t.Logf("merged E5s %v: 64 meters, %d selects (%.2f a meter), %d requests", merge, sel, float64(sel)/64, m.Counters().Requests.Load())
		if sel > 6*64 {
			t.Fatalf("%d selects for 64 meters", sel)
		}
	}
}
