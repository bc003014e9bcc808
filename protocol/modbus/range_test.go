package modbus

import (
	"errors"
	"strings"
	"testing"

	"tidegate/reading"
)

const rangeProfile = `name: r
source: test
function: 3
registers:
  - {quantity: flow, address: 0, type: float32, unit: m3/h, min: -10, max: 10}
  - {quantity: forward, address: 2, type: float32, unit: m3, min: 0}
`

// A value beyond the profile's physical range makes the reading
// implausible, naming the quantity and the bounds; values inside do not.
func TestRangeMarksImplausible(t *testing.T) {
	p, err := ParseProfile("r.yaml", []byte(rangeProfile))
	if err != nil {
		t.Fatal(err)
	}
	ok := reading.Reading{Quality: reading.QualityGood, Has: reading.HasFlow | reading.HasForward, Flow: -9.5, Forward: 12}
	p.MarkImplausible(&ok)
	if ok.Quality != reading.QualityGood || ok.Error != "" {
		t.Errorf("in range: %v %q", ok.Quality, ok.Error)
	}
	bad := reading.Reading{Quality: reading.QualityGood, Has: reading.HasFlow | reading.HasForward, Flow: -1030800.267, Forward: 12}
	p.MarkImplausible(&bad)
	if bad.Quality != reading.QualityImplausible || !strings.Contains(bad.Error, "flow -1030800.267 m3/h is outside the profile's physical range -10..10 (r)") {
		t.Errorf("out of range: %v %q", bad.Quality, bad.Error)
	}
	if err := p.CheckRange(Values{Numbers: map[string]float64{"forward": -1}}); !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "0..∞") {
		t.Errorf("open bound: %v", err)
	}
	if _, err := ParseProfile("r.yaml", []byte(strings.Replace(rangeProfile, "min: -10", "min: 20", 1))); err == nil || !strings.Contains(err.Error(), "min 20 is not below max 10") {
		t.Errorf("min above max: %v", err)
	}
}
