package mbus

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// addSharedSeeds adds every libmbus corpus frame (and its user data, for
// the record fuzzer) to the fuzz corpus.
func addSharedSeeds(f *testing.F, userData bool) {
	for _, dir := range []string{"frames", "error-frames"} {
		files, _ := filepath.Glob(filepath.Join(corpusDir, dir, "*.hex"))
		for _, hf := range files {
			raw, err := os.ReadFile(hf)
			if err != nil {
				continue
			}
			b, err := parseHex(string(raw))
			if err != nil {
				continue
			}
			if !userData {
				f.Add(b)
				continue
			}
			if fr, _, err := Decode(b); err == nil && len(fr.Data) > LongHeaderLen && fr.CI == CIVariableLong {
				f.Add(fr.Data[LongHeaderLen:])
			}
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte{0xE5})
	f.Add([]byte{0x10, 0x7B, 0x01, 0x7C, 0x16})
	f.Add([]byte{0x68, 0x03, 0x03, 0x68, 0x53, 0xFE, 0x50, 0xA1, 0x16})
	addSharedSeeds(f, false)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Decode(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		enc, err := Encode(fr)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(enc, b[:n]) {
			t.Fatalf("round trip % X -> % X", b[:n], enc)
		}
		tg, _ := DecodeTelegram(fr)
		if len(tg.Records) > len(fr.Data) {
			t.Fatalf("%d records from %d bytes", len(tg.Records), len(fr.Data))
		}
	})
}

func FuzzParseRecords(f *testing.F) {
	f.Add([]byte{0x0C, 0x13, 0x21, 0x43, 0x05, 0x00, 0x04, 0x6D, 0x0B, 0x0B, 0xCD, 0x13, 0x0F, 0x01})
	f.Add([]byte{0x02, 0xFC, 0x03, 'H', 'R', '%', 0x74, 0x34, 0x12, 0x0D, 0xFD, 0x11, 0x02, 'a', 'b'})
	f.Add([]byte{0xC4, 0xA3, 0x5A, 0x93, 0x3C, 1, 0, 0, 0, 0x1F})
	addSharedSeeds(f, true)
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, _ := ParseRecords(b)
		if len(rs) > len(b) {
			t.Fatalf("%d records from %d bytes", len(rs), len(b))
		}
		for _, r := range rs {
			// Every decoded record must encode again without panicking;
			// whether it succeeds depends on the value (e.g. invalid BCD).
			_, _ = AppendRecord(nil, r)
		}
	})
}
