package modbus

import (
	"bytes"
	"errors"
	"testing"
)

func mbap(tid uint16, unit byte, pdu ...byte) []byte {
	n := len(pdu) + 1
	return append([]byte{byte(tid >> 8), byte(tid), 0, 0, byte(n >> 8), byte(n), unit}, pdu...)
}

func TestScanMBAP(t *testing.T) {
	req := mbap(5, 1, 3, 0, 0, 0, 2)
	ans := mbap(5, 1, 3, 4, 0, 1, 0, 2)
	late := mbap(4, 1, 3, 4, 9, 9, 9, 9)
	other := mbap(5, 2, 0x83, 2)
	tests := []struct {
		name        string
		buf, frame  []byte
		used, stale int
		err         error
	}{
		{"answer", ans, ans, len(ans), 0, nil},
		{"late answer first", cat(late, ans), ans, len(late) + len(ans), 1, nil},
		{"other unit", cat(other, ans), ans, len(other) + len(ans), 1, nil},
		{"late answer alone", late, nil, len(late), 1, nil},
		{"half a header", ans[:5], nil, 0, 0, nil},
		{"half a frame after a late one", cat(late, ans[:9]), nil, len(late), 1, nil},
		{"bytes after the answer stay", cat(ans, late[:3]), ans, len(ans), 0, nil},
		{"protocol id", []byte{0, 5, 0, 1, 0, 3, 1, 3, 0}, nil, 0, 0, ErrMBAP},
		{"length", []byte{0, 5, 0, 0, 0, 1, 1, 3, 0}, nil, 0, 0, ErrMBAP},
	}
	for _, tt := range tests {
		s, err := ScanMBAP(req, tt.buf)
		if !bytes.Equal(s.Frame, tt.frame) || s.Used != tt.used || s.Stale != tt.stale || !errors.Is(err, tt.err) {
			t.Errorf("%s: got % X used %d stale %d err %v", tt.name, s.Frame, s.Used, s.Stale, err)
		}
	}
}

// FuzzScanMBAP: whatever a Modbus TCP peer sends, the scan never panics,
// accounts for every settled byte and only returns a frame with the
// request's transaction and unit ids and a length that matches its header.
func FuzzScanMBAP(f *testing.F) {
	f.Add([]byte{0, 5, 0, 0, 0, 6, 1, 3}, cat(mbap(4, 1, 3, 2, 0, 0), mbap(5, 1, 3, 2, 0, 7)))
	f.Add([]byte{0, 1, 0, 0, 0, 6, 9, 3}, []byte{0, 1, 0, 0, 0, 3, 9, 0x83, 2})
	f.Add([]byte{0, 1, 0, 0, 0, 6, 9, 3}, []byte{0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, req, buf []byte) {
		s, err := ScanMBAP(req, buf)
		if s.Used > len(buf) || s.Stale < 0 {
			t.Fatalf("used %d of %d", s.Used, len(buf))
		}
		if err == nil && s.Frame != nil {
			fr := s.Frame
			if len(fr) < MBAPHeaderLength || fr[0] != req[0] || fr[1] != req[1] || fr[6] != req[6] ||
				int(fr[4])<<8|int(fr[5]) != len(fr)-6 || !bytes.Equal(buf[s.Used-len(fr):s.Used], fr) {
				t.Fatalf("bad frame % X for request % X", fr, req)
			}
		}
	})
}
