package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every file in profiles/ is built in, under its own name, and parses.
func TestBuiltinIsEveryShippedProfile(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("profiles/*.yaml")
	if len(files) == 0 || len(set) != len(files) {
		t.Fatalf("%d built-in profiles, %d files in profiles/", len(set), len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		p := set[name]
		if p == nil || p.File != BuiltinSource+name+".yaml" {
			t.Errorf("%s: not built in as %q (got %+v)", f, name, p)
		}
	}
}

// A folder adds a profile and overrides a built-in one by name; a missing
// folder is ErrNoDir.
func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	write := func(file, name, model string) {
		data := "name: " + name + "\nmodel: " + model + "\nsource: test\nfunction: 3\nregisters:\n  - {quantity: forward, address: 0, type: float32, unit: m3}\n"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mine.yaml", "mine", "local meter")
	write("tuf.yaml", "tuf2000m", "site's own TUF map")
	set, err := Profiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set["mine"] == nil || set["tuf2000m"].Model != "site's own TUF map" || set["dynaflox-ultrad"] == nil {
		t.Errorf("overlay: mine=%v tuf2000m=%q dynaflox=%v", set["mine"] != nil, set["tuf2000m"].Model, set["dynaflox-ultrad"] != nil)
	}
	if err := Overlay(set, filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing folder: %v", err)
	}
}

func TestNearest(t *testing.T) {
	set, _ := Builtin()
	for name, want := range map[string][]string{
		"dynaflox-ultra":  {"dynaflox-ultrad"},
		"tuf2000":         {"tuf2000m"},
		"arad_octave":     {"arad-octave"},
		"dynaflox-ultrad": {"dynaflox-ultrad"},
	} {
		if got := Nearest(name, set); !reflect.DeepEqual(got, want) {
			t.Errorf("Nearest(%q) = %v, want %v", name, got, want)
		}
	}
}
