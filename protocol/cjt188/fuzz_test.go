package cjt188

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The seed corpus in testdata/fuzz/FuzzDecode holds the frames of
// ../shared/cjt188/frames.json (and the seeds below), so the fuzzer starts
// from real frames even where ../shared is absent.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78, 0x01, 0x03, 0x1F, 0x90, 0x00, 0x80, 0x16})
	f.Add([]byte{0xFF, 0x68, 0x68})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Decode(b)
		if err == nil {
			if n < MinFrame || n > len(b) || fr.Skipped+fr.Preamble+MinFrame+len(fr.Data) != n {
				t.Fatalf("n %d of %d, skipped %d preamble %d data %d", n, len(b), fr.Skipped, fr.Preamble, len(fr.Data))
			}
			enc, err := Encode(fr)
			if err != nil {
				t.Fatalf("decoded frame does not encode: %v", err)
			}
			if !bytes.Equal(enc, b[fr.Skipped:n]) {
				t.Fatalf("round trip % X -> % X", b[fr.Skipped:n], enc)
			}
		}
		for _, o := range []ClockOrder{ClockAuto, ClockSecondsFirst, ClockCenturyFirst} {
			d, err := Describe(b, DescribeOptions{Clock: o, Layout: MirroredLayout})
			if err != nil {
				continue
			}
			if _, err := json.Marshal(d); err != nil {
				t.Fatal(err)
			}
			m, _, _ := DecodeMessage(b)
			if c, err := DecodeCurrent(m.Body, o); err == nil {
				// What decodes encodes again to the same bytes (values are BCD,
				// so nothing is lost), unless the clock was read in the other order.
				body, err := AppendCurrent(nil, c, o)
				if err == nil && o != ClockAuto && !bytes.Equal(body, m.Body[:CurrentLen-3]) {
					t.Fatalf("901F body % X -> % X", m.Body[:CurrentLen-3], body)
				}
			}
		}
	})
}
