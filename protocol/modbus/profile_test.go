package modbus

import (
	"errors"
	"math"
	"strings"
	"testing"

	"tidegate/reading"
)

func loadAll(t *testing.T) map[string]*Profile {
	t.Helper()
	ps, err := LoadProfiles("../../configs/profiles")
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
	in := Values{Numbers: map[string]float64{
		QForward: 1234.567891, QReverse: 12.345678, QNet: 1222.222213, QFlow: -0.75, QTemperature: 18.5, QBattery: 3600,
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
	m := RegisterMap{}
	m.Put(8, []uint16{0x0002, 0x0001, 0x0000, 0x3E80})
	v, err := p.Decode(m)
	if err != nil || v.Numbers[QForward] != 65538.25 {
		t.Fatalf("forward = %v, %v; want 65538.25", v.Numbers[QForward], err)
	}
	if _, ok := v.Numbers[QReverse]; ok {
		t.Error("reverse decoded from registers that were never read")
	}
}

func TestDynafloxMillilitres(t *testing.T) {
	p := loadAll(t)["dynaflox-ultrad"]
	m := RegisterMap{}
	m.Put(0, []uint16{0, 1500, 0, 42, 0x0007, 0xA120}) // 1500 L/h; 42 m3 + 500000 mL
	v, _ := p.Decode(m)
	if math.Abs(v.Numbers[QForward]-42.5) > 1e-9 || math.Abs(v.Numbers[QFlow]-1.5) > 1e-9 {
		t.Errorf("forward %v flow %v, want 42.5 and 1.5", v.Numbers[QForward], v.Numbers[QFlow])
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
	// The shipped profiles fit their devices' limits.
	for name, p := range loadAll(t) {
		for _, sp := range Merge(p.Spans(), p.MaxRegisters, 8) {
			if int(sp.Count) > p.MaxRegisters {
				t.Errorf("%s: read of %d registers exceeds %d", name, sp.Count, p.MaxRegisters)
			}
		}
	}
}

func BenchmarkProfileDecode(b *testing.B) {
	ps, err := LoadProfiles("../../configs/profiles")
	if err != nil {
		b.Fatal(err)
	}
	p := ps["tuf2000m"]
	m, _ := p.Encode(Values{Numbers: map[string]float64{QForward: 1234.5, QReverse: 3, QFlow: 1, QTemperature: 20}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Decode(m); err != nil {
			b.Fatal(err)
		}
	}
}
