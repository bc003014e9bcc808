package mbus

import (
	"testing"
	"time"
)

// wfh21 is a 100-byte RSP_UD of a Siemens WFH21 warm-water meter (libmbus
// test corpus): volume, on time, clock, dates, ident, version text, a
// stored volume and manufacturer data. A typical water-meter telegram.
var wfh21 = mustHex("68 5E 5E 68 08 05 72 91 64 00 08 65 32 99 06 DA 00 00 00 0C 13 00 00 00 00 0B 22 86 40 04 04 6D 24 0A " +
	"61 1C 32 6C 00 00 0C 78 91 64 00 08 06 FD 0C 0A 00 01 00 FA 01 0D FD 0B 05 31 32 48 46 57 01 FD 0E 00 4C 13 00 00 00 00 42 " +
	"6C 5F 1C 0F 37 FD 17 00 00 00 00 00 00 00 00 02 7A 25 00 02 78 25 00 82 16")

func mustHex(s string) []byte {
	b, err := parseHex(s)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeFull(b []byte) (Telegram, error) {
	f, _, err := Decode(b)
	if err != nil {
		return Telegram{}, err
	}
	return DecodeTelegram(f)
}

// BenchmarkDecodeWaterTelegram decodes frame and application layer. The
// x_linklayer metric is its time over the link layer alone (framing and
// checksum), measured in the same run: the cost of the record decoding.
func BenchmarkDecodeWaterTelegram(b *testing.B) {
	if tg, err := decodeFull(wfh21); err != nil || len(tg.Records) != 11 {
		b.Fatalf("%d records, %v", len(tg.Records), err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(wfh21)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := decodeFull(wfh21); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	full := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	// The reference runs as many iterations outside the timer.
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, _, err := Decode(wfh21); err != nil {
			b.Fatal(err)
		}
	}
	if ref := float64(time.Since(start).Nanoseconds()) / float64(b.N); ref > 0 {
		b.ReportMetric(full/ref, "x_linklayer")
	}
}

// BenchmarkEncodeRspUd builds the simulator's typical answer.
func BenchmarkEncodeRspUd(b *testing.B) {
	tg, err := decodeFull(wfh21)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := EncodeRspUd(5, false, tg.Header, tg.Records); err != nil {
			b.Fatal(err)
		}
	}
}
