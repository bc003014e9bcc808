package cjt188

import (
	"os"
	"path/filepath"
	"testing"
)

// The profile files in configs/profiles/cjt188 say what StatusProfiles
// holds; the daemon uses the built-in values.
func TestStatusProfileFiles(t *testing.T) {
	files, _ := filepath.Glob("../../configs/profiles/cjt188/*.yaml")
	if len(files) != len(StatusProfiles) {
		t.Fatalf("%d profile files, %d built-in profiles", len(files), len(StatusProfiles))
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
		if l, ok := StatusProfiles[p.Name]; !ok || l != p.Layout || p.Name+".yaml" != filepath.Base(f) {
			t.Errorf("%s: %+v, built-in %+v", f, p, l)
		}
	}
	if _, err := ParseStatusProfile("x", []byte("name: x\nprotocol: cjt188\nsource: s\nstatus: {valve_bits: [1, 1], battery_bit: 2}\n")); err == nil {
		t.Error("overlapping bits accepted")
	}
}
