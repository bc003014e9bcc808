package uplink

import (
	"errors"
	"testing"
)

func TestParseAppAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{`{"id":"gw1:42"}`, 42, false},
		{`{"seq":7}`, 7, false},
		{`{}`, 0, false},
		{`{"id":"gw2:42"}`, 0, true},
		{`{"id":"gw1:x"}`, 0, true},
		{`{"id":"gw1"}`, 0, true},
		{`{"seq":-1}`, 0, true},
		{`nope`, 0, true},
	} {
		got, err := parseAppAck("gw1", []byte(tc.in))
		if got != tc.want || (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrAppAck)) {
			t.Errorf("%s: %d, %v", tc.in, got, err)
		}
	}
}

func FuzzParseAppAck(f *testing.F) {
	for _, s := range []string{`{"id":"gw1:42"}`, `{"seq":7}`, `{}`, `{"id":"gw1:"}`, `[`, `{"seq":1e30}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if _, err := parseAppAck("gw1", p); err != nil && !errors.Is(err, ErrAppAck) {
			t.Fatal(err)
		}
	})
}
