package mbus

import (
	"testing"
	"time"
)

// The SU bit of type F (bit 16) and type I (bit 24) date-times is decoded
// and encoded: a meter's 02:30 in the hour that repeats when summer time
// ends is two different instants, told apart only by it.
func TestSummerTimeBit(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		su   bool
	}{
		{"F winter", []byte{0x04, 0x6D, 0x1E, 0x02, 0x59, 0x3A}, false},
		{"F summer", []byte{0x04, 0x6D, 0x1E, 0x82, 0x59, 0x3A}, true},
		{"I winter", []byte{0x06, 0x6D, 0x05, 0x1E, 0x02, 0x59, 0x3A, 0x00}, false},
		{"I summer", []byte{0x06, 0x6D, 0x05, 0x1E, 0x82, 0x59, 0x3A, 0x00}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ParseRecords(tc.in)
			if err != nil || len(rs) != 1 {
				t.Fatalf("%v, %d records", err, len(rs))
			}
			v := rs[0].Value
			if v.SummerTime != tc.su || v.Time.Hour() != 2 || v.Time.Minute() != 30 || v.Time.Day() != 25 || v.Time.Month() != time.October || v.Time.Year() != 2026 {
				t.Fatalf("decoded %+v, want 2026-10-25 02:30 summer %v", v, tc.su)
			}
			out, err := AppendRecord(nil, rs[0])
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(tc.in) {
				t.Fatalf("encoded % X, want % X", out, tc.in)
			}
		})
	}
	berlin := time.FixedZone("CEST", 2*3600) // a summer-time zone: IsDST is false for fixed zones
	if DateTime(time.Date(2026, 7, 1, 12, 0, 0, 0, berlin)).Text != "2026-07-01T12:00:00Z" {
		t.Fatal("DateTime does not encode the wall clock of its location")
	}
}
