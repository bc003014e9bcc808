package config

import (
	"reflect"
	"sort"
)

// Diff is what a reload changes. A bus is restarted when its own settings or
// any of its meters changed; buses nothing touched keep polling undisturbed.
type Diff struct {
	BusesAdded     []string
	BusesRemoved   []string
	BusesRestarted []string // settings or meter list changed
	MetersAdded    []string
	MetersRemoved  []string
	MetersChanged  []string
	// Global is set when a setting outside buses and meters changed (MQTT,
	// buffer, filter, API, log); the daemon reports which of those it can apply live.
	Global []string
}

// Empty reports whether a reload changes nothing.
func (d Diff) Empty() bool {
	return len(d.BusesAdded)+len(d.BusesRemoved)+len(d.BusesRestarted)+len(d.MetersAdded)+
		len(d.MetersRemoved)+len(d.MetersChanged)+len(d.Global) == 0
}

// Compare computes what changes from old to new.
func Compare(old, new *Config) Diff {
	var d Diff
	ob, nb := map[string]Bus{}, map[string]Bus{}
	for _, b := range old.Buses {
		ob[b.Name] = b
	}
	for _, b := range new.Buses {
		nb[b.Name] = b
	}
	om, nm := map[string]Meter{}, map[string]Meter{}
	for _, m := range old.Meters {
		om[m.ID] = m
	}
	for _, m := range new.Meters {
		nm[m.ID] = m
	}
	touched := map[string]bool{}
	for id, m := range nm {
		o, ok := om[id]
		switch {
		case !ok:
			d.MetersAdded = append(d.MetersAdded, id)
			touched[m.Bus] = true
		case o != m || !reflect.DeepEqual(old.Profiles[m.Profile], new.Profiles[m.Profile]):
			d.MetersChanged = append(d.MetersChanged, id)
			touched[m.Bus], touched[o.Bus] = true, true
		}
	}
	for id, m := range om {
		if _, ok := nm[id]; !ok {
			d.MetersRemoved = append(d.MetersRemoved, id)
			touched[m.Bus] = true
		}
	}
	for name, b := range nb {
		o, ok := ob[name]
		switch {
		case !ok:
			d.BusesAdded = append(d.BusesAdded, name)
		case o != b || touched[name]:
			d.BusesRestarted = append(d.BusesRestarted, name)
		}
	}
	for name := range ob {
		if _, ok := nb[name]; !ok {
			d.BusesRemoved = append(d.BusesRemoved, name)
		}
	}
	for _, s := range []struct {
		name     string
		old, new any
	}{
		{"gateway", old.Gateway, new.Gateway}, {"log", old.Log, new.Log}, {"api", old.API, new.API},
		{"filter", old.Filter, new.Filter}, {"buffer", old.Buffer, new.Buffer}, {"mqtt", old.MQTT, new.MQTT},
		{"profile_dirs", old.Profile, new.Profile},
	} {
		if !reflect.DeepEqual(s.old, s.new) {
			d.Global = append(d.Global, s.name)
		}
	}
	for _, l := range [][]string{d.BusesAdded, d.BusesRemoved, d.BusesRestarted, d.MetersAdded, d.MetersRemoved, d.MetersChanged} {
		sort.Strings(l)
	}
	return d
}
