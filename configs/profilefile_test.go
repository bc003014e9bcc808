package configs

import (
	"errors"
	"math"
	"strings"
	"testing"

	pmodbus "tidegate/protocol/modbus"
	"tidegate/reading"
)

func loadAll(t *testing.T) map[string]*pmodbus.Profile {
	t.Helper()
	ps, err := LoadProfiles("profiles")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tuf2000m", "dynaflox-ultrad", "arad-octave"} {
		if ps[want] == nil {
			t.Fatalf("profile %s missing", want)
		}
	}
	return ps
}

func TestProfilesRoundTrip(t *testing.T) {
	in := pmodbus.Values{Numbers: map[string]float64{
		pmodbus.QForward: 1234.567891, pmodbus.QReverse: 12.345678, pmodbus.QNet: 1222.222213, pmodbus.QFlow: -0.75, pmodbus.QTemperature: 18.5, pmodbus.QBattery: 3600,
	}, Status: reading.StatusEmptyPipe | reading.StatusMeterError}
	for name, p := range loadAll(t) {
		m, err := p.Encode(in)
		if err != nil {
			t.Fatalf("%s: Encode: %v", name, err)
		}
		out, err := p.Decode(m)
		if err != nil {
			t.Fatalf("%s: Decode: %v", name, err)
		}
		for q, want := range in.Numbers {
			if p.Register(q) == nil {
				continue
			}
			got, ok := out.Numbers[q]
			// float32 fractions and mL resolution bound the error.
			if !ok || math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want))/100 && math.Abs(got-want) > 1e-5 {
				t.Errorf("%s: %s = %v (present %v), want %v", name, q, got, ok, want)
			}
		}
		// Status bits survive only where the profile has a bit for them.
		for _, s := range []reading.Status{reading.StatusEmptyPipe, reading.StatusMeterError} {
			has := false
			for _, r := range p.Registers {
				for _, b := range r.Bits {
					has = has || b == s
				}
			}
			if has && out.Status&s == 0 {
				t.Errorf("%s: status %v lost", name, s.Names())
			}
		}
	}
}

func TestTUFIntegerPlusFraction(t *testing.T) {
	p := loadAll(t)["tuf2000m"]
	// Forward total 65538.25 m3: LONG 65538 = 0x00010002, CDAB -> [0x0002, 0x0001]; REAL4 0.25 = 0x3E800000 -> [0x0000, 0x3E80].
	m := pmodbus.RegisterMap{}
	m.Put(8, []uint16{0x0002, 0x0001, 0x0000, 0x3E80})
	v, err := p.Decode(m)
	if err != nil || v.Numbers[pmodbus.QForward] != 65538.25 {
		t.Fatalf("forward = %v, %v; want 65538.25", v.Numbers[pmodbus.QForward], err)
	}
	if _, ok := v.Numbers[pmodbus.QReverse]; ok {
		t.Error("reverse decoded from registers that were never read")
	}
}

func TestDynafloxMillilitres(t *testing.T) {
	p := loadAll(t)["dynaflox-ultrad"]
	m := pmodbus.RegisterMap{}
	m.Put(0, []uint16{0, 1500, 0, 42, 0x0007, 0xA120}) // 1500 L/h; 42 m3 + 500000 mL
	v, _ := p.Decode(m)
	if math.Abs(v.Numbers[pmodbus.QForward]-42.5) > 1e-9 || math.Abs(v.Numbers[pmodbus.QFlow]-1.5) > 1e-9 {
		t.Errorf("forward %v flow %v, want 42.5 and 1.5", v.Numbers[pmodbus.QForward], v.Numbers[pmodbus.QFlow])
	}
	if p.MaxRegisters != 22 {
		t.Errorf("max registers %d", p.MaxRegisters)
	}
}

func TestParseProfileErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "name: x\nsource: s\nfunction: 3\nbogus: 1\nregisters: []\n", []string{"field bogus not found"}},
		{"everything", `name: x
source: s
function: 5
registers:
  - quantity: forward
    address: 3
    type: float
    unit: L
  - quantity: flow
    unit: m3/h
  - quantity: status
    address: 9
    type: uint16
    bits: {3: wet}
`, []string{"function: 5", "p.yaml:5:5: registers[0].unit", "p.yaml:5:5: registers[0].type", "p.yaml:9:5: registers[1].address: missing", `unknown status "wet"`}},
	}
	for _, tt := range tests {
		_, err := ParseProfile("p.yaml", []byte(tt.yaml))
		if !errors.Is(err, ErrProfile) {
			t.Fatalf("%s: err = %v, want ErrProfile", tt.name, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tt.name, err, w)
			}
		}
	}
}

func TestShippedProfilesFitTheirDevices(t *testing.T) {
	for name, p := range loadAll(t) {
		for _, sp := range pmodbus.Merge(p.Spans(), p.MaxRegisters, 8) {
			if int(sp.Count) > p.MaxRegisters {
				t.Errorf("%s: read of %d registers exceeds %d", name, sp.Count, p.MaxRegisters)
			}
		}
	}
}

func BenchmarkProfileDecode(b *testing.B) {
	ps, err := LoadProfiles("profiles")
	if err != nil {
		b.Fatal(err)
	}
	p := ps["tuf2000m"]
	m, _ := p.Encode(pmodbus.Values{Numbers: map[string]float64{pmodbus.QForward: 1234.5, pmodbus.QReverse: 3, pmodbus.QFlow: 1, pmodbus.QTemperature: 20}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Decode(m); err != nil {
			b.Fatal(err)
		}
	}
}

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
	if err := p.CheckRange(pmodbus.Values{Numbers: map[string]float64{"forward": -1}}); !errors.Is(err, pmodbus.ErrOutOfRange) || !strings.Contains(err.Error(), "0..∞") {
		t.Errorf("open bound: %v", err)
	}
	if _, err := ParseProfile("r.yaml", []byte(strings.Replace(rangeProfile, "min: -10", "min: 20", 1))); err == nil || !strings.Contains(err.Error(), "min 20 is not below max 10") {
		t.Errorf("min above max: %v", err)
	}
}
