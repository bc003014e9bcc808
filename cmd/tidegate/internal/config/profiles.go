package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"tidegate/configs"
)

// ProfileDirs is where this config's profiles come from beyond the built-in
// ones, in override order: the box's own folder, then profile_dirs (relative
// to the config file's folder).
func (c *Config) ProfileDirs() []string {
	var dirs []string
	for _, d := range c.Profile {
		if !filepath.IsAbs(d) && c.File != "" {
			d = filepath.Join(filepath.Dir(c.File), d)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// loadProfiles fills c.Profiles and reports a profile folder that is missing
// or holds a bad file, and a meter naming a profile that is not in the set.
func (c *Config) loadProfiles(ps *Problems, nodes map[string]*yaml.Node) {
	set, err := configs.Builtin()
	if err != nil {
		ps.at(nil, "", "built-in profiles: %v", err)
	}
	if err := configs.Overlay(set, configs.SystemProfileDir); err != nil && !errors.Is(err, configs.ErrNoDir) {
		ps.at(nil, "", "%v", err)
	}
	for i, d := range c.ProfileDirs() {
		path := fmt.Sprintf("profile_dirs[%d]", i)
		if err := configs.Overlay(set, d); err != nil {
			if errors.Is(err, configs.ErrNoDir) {
				ps.at(nodes[path], path, "%s is not a folder", d)
			} else {
				ps.at(nodes[path], path, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
			}
		}
	}
	c.Profiles = set
	for i, m := range c.Meters {
		if m.Profile == "" || set[m.Profile] != nil {
			continue
		}
		b, ok := c.BusByName(m.Bus)
		if !ok || (b.Protocol != ProtoModbus && b.Protocol != ProtoModbusTCP) {
			continue // the bus's own problem is reported already
		}
		path := fmt.Sprintf("meters[%d].profile", i)
		ps.at(nodes[path], path, "no profile named %q; nearest: %s (see 'tidegate profiles')",
			m.Profile, strings.Join(configs.Nearest(m.Profile, set), ", "))
	}
}
