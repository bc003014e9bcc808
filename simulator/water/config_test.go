package water

import (
	"bytes"
	"os"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The sample config beside the code decodes into Config and simulates.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("water.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Meter.ReverseGain != 0.85 || time.Duration(cfg.Surges.Duration) != 15*time.Minute ||
		len(cfg.Leaks) != 1 || time.Duration(cfg.Leaks[0].After) != 30*time.Hour {
		t.Fatalf("decoded %+v", cfg)
	}
	m := mustNew(t, cfg, 1)
	m.Advance(t0.Add(72 * time.Hour))
	tr := m.Truth()
	if !tr.LeakOn || tr.RealUse <= 0 || tr.PhantomForward <= 0 || tr.RealBackflow <= 0 {
		t.Errorf("truth after 3 days: %+v", tr)
	}
	var bad Config
	if err := yaml.Unmarshal([]byte("surges: {duration: soon}"), &bad); err == nil {
		t.Error("duration 'soon' accepted")
	}
}
