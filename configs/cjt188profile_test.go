package configs

import (
	"os"
	"path/filepath"
	"testing"

	pcjt "tidegate/protocol/cjt188"
)

// The profile files in profiles/cjt188 say what protocol/cjt188's
// StatusProfiles holds; the daemon uses the built-in values.
func TestStatusProfileFiles(t *testing.T) {
	files, _ := filepath.Glob("profiles/cjt188/*.yaml")
	if len(files) != len(pcjt.StatusProfiles) {
		t.Fatalf("%d profile files, %d built-in profiles", len(files), len(pcjt.StatusProfiles))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseStatusProfile(f, data)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := pcjt.StatusProfiles[p.Name]; !ok || l != p.Layout || p.Name+".yaml" != filepath.Base(f) {
			t.Errorf("%s: %+v, built-in %+v", f, p, l)
		}
	}
	if _, err := ParseStatusProfile("x", []byte("name: x\nprotocol: cjt188\nsource: s\nstatus: {valve_bits: [1, 1], battery_bit: 2}\n")); err == nil {
		t.Error("overlapping bits accepted")
	}
}
