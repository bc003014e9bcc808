package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any bytes give a config or problems, never a panic, and a
// config that parses is valid by construction (re-validating finds nothing).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/config/*/config.yaml")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(base))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data, nil)
		if err != nil {
			var ps *Problems
			if !errors.As(err, &ps) || len(ps.List) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		if c.Gateway.ID == "" || c.MQTT.Broker == "" {
			t.Fatalf("accepted a config without gateway id or broker")
		}
	})
}
