// Package configs is what tidegate ships as data. The Modbus meter profiles
// in profiles/ are built into the binary, so an installed tidegate needs no
// folder beside it; folders on the box add profiles or override one by name.
package configs

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"

	pmodbus "tidegate/protocol/modbus"
)

//go:embed profiles/*.yaml
var builtin embed.FS

// SystemProfileDir is where a box keeps profiles of its own; it need not exist.
const SystemProfileDir = "/etc/tidegate/profiles"

// BuiltinSource is Profile.File's prefix for a profile built into the binary.
const BuiltinSource = "built-in:"

// ErrNoDir is returned for a profile folder that is not there.
var ErrNoDir = errors.New("no such profile folder")

// Builtin returns the profiles built into the binary, by name. Their File
// reads "built-in:NAME.yaml". The files are checked by this package's tests,
// so an error here means a broken build.
func Builtin() (map[string]*pmodbus.Profile, error) {
	files, err := fs.Glob(builtin, "profiles/*.yaml")
	if err != nil {
		return nil, err
	}
	out := make(map[string]*pmodbus.Profile, len(files))
	var errs []error
	for _, f := range files {
		data, err := builtin.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := ParseProfile(BuiltinSource+path.Base(f), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[p.Name] = p
	}
	return out, errors.Join(errs...)
}

// Overlay adds the profiles of dir to set, replacing any of the same name.
// A missing dir is ErrNoDir; a bad file is reported and the others still load.
func Overlay(set map[string]*pmodbus.Profile, dir string) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: %w", dir, ErrNoDir)
	}
	ps, err := LoadProfiles(dir)
	for n, p := range ps {
		set[n] = p
	}
	return err
}

// Profiles is the built-in set, then SystemProfileDir if it exists, then
// each of dirs (which must exist), later ones overriding earlier by name.
func Profiles(dirs ...string) (map[string]*pmodbus.Profile, error) {
	set, err := Builtin()
	errs := []error{err}
	if err := Overlay(set, SystemProfileDir); err != nil && !errors.Is(err, ErrNoDir) {
		errs = append(errs, err)
	}
	for _, d := range dirs {
		errs = append(errs, Overlay(set, d))
	}
	return set, errors.Join(errs...)
}

// Names lists a set's names, sorted.
func Names(set map[string]*pmodbus.Profile) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Nearest returns the names in set closest to name by edit distance, for
// "did you mean" in messages: the nearest, and up to two more nearly as near.
func Nearest(name string, set map[string]*pmodbus.Profile) []string {
	type cand struct {
		n string
		d int
	}
	var cs []cand
	for _, n := range Names(set) {
		cs = append(cs, cand{n, editDistance(name, n)})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	var out []string
	for _, c := range cs {
		if len(out) == 3 || (len(out) > 0 && (c.d > cs[0].d+2 || c.d > len(name)/2)) {
			break
		}
		out = append(out, c.n)
	}
	return out
}

// editDistance is Levenshtein's over bytes: profile names are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
