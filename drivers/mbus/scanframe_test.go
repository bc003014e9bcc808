package mbus

import (
	"testing"

	pmbus "tidegate/protocol/mbus"
)

func TestScanFrame(t *testing.T) {
	req := pmbus.ShortFrame(0x7B, 5)
	long, _ := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: 0x08, Address: 5, CI: 0x72, Data: make([]byte, 12)})
	bad := append([]byte(nil), long...)
	bad[len(bad)-2]++
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name                        string
		buf                         []byte
		start, end, echoes, dropped int
	}{
		{"answer", long, 0, len(long), 0, 0},
		{"echo then answer", cat(req, long), 5, 5 + len(long), 1, 0},
		{"noise then answer", cat([]byte{0x00, 0xFF}, long), 2, 2 + len(long), 0, 2},
		{"partial", long[:10], 0, 0, 0, 0},
		{"ack", []byte{0xE5}, 0, 1, 0, 0},
		{"bad checksum then answer", cat(bad, long), -1, -1, 0, -1},
		{"empty", nil, 0, 0, 0, 0},
	} {
		s := scanFrame(tc.buf, req)
		if tc.start >= 0 && (s.start != tc.start || s.end != tc.end || s.echoes != tc.echoes || s.dropped != tc.dropped) {
			t.Errorf("%s: %+v", tc.name, s)
		}
		if tc.start < 0 && (s.end != len(tc.buf) || s.dropped == 0) {
			t.Errorf("%s: did not resynchronise onto the good frame: %+v", tc.name, s)
		}
	}
}

// FuzzScanFrame: whatever arrives, the scan stays in bounds, accounts for
// every byte it skipped, and what it returns is one valid frame.
func FuzzScanFrame(f *testing.F) {
	req := pmbus.ShortFrame(0x7B, 5)
	long, _ := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: 0x08, Address: 5, CI: 0x72, Data: []byte{1, 2, 3}})
	f.Add(long)
	f.Add(append(append([]byte(nil), req...), long...))
	f.Add([]byte{0xE5, 0xE5})
	f.Add([]byte{0x68, 0x03, 0x03, 0x68, 0x53, 0xFD, 0x52})
	f.Add([]byte{0x10, 0x7B, 0x05})
	f.Fuzz(func(t *testing.T, buf []byte) {
		s := scanFrame(buf, req)
		if s.start < 0 || s.start > len(buf) || s.end < 0 || s.end > len(buf) || (s.end > 0 && s.end <= s.start) {
			t.Fatalf("out of bounds: %+v of %d", s, len(buf))
		}
		if s.dropped+s.echoes*len(req) != s.start {
			t.Fatalf("skipped %d bytes but accounted %d dropped + %d echoes", s.start, s.dropped, s.echoes)
		}
		if s.end > 0 {
			if _, used, err := pmbus.Decode(buf[s.start:s.end]); err != nil || used != s.end-s.start {
				t.Fatalf("returned no valid frame: %v", err)
			}
		}
	})
}
