package modbus

import (
	"testing"
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name         string
		spans        []Span
		maxRegs, gap int
		want         []Span
	}{
		{"contiguous", []Span{{0, 2}, {2, 2}, {4, 4}}, 100, 0, []Span{{0, 8}}},
		{"gap bridged", []Span{{0, 2}, {8, 4}}, 100, 10, []Span{{0, 12}}},
		{"gap too wide", []Span{{0, 2}, {8, 4}}, 100, 5, []Span{{0, 2}, {8, 4}}},
		{"device limit", []Span{{0, 2}, {2, 2}, {20, 4}}, 22, 30, []Span{{0, 4}, {20, 4}}},
		{"unsorted overlap", []Span{{10, 4}, {0, 2}, {11, 2}}, 100, 8, []Span{{0, 14}}},
		{"far apart", []Span{{0, 1}, {1441, 1}}, 125, 10, []Span{{0, 1}, {1441, 1}}},
	}
	for _, tt := range tests {
		got := Merge(tt.spans, tt.maxRegs, tt.gap)
		if len(got) != len(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}
