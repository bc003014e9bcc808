package cjt188

import (
	"sort"
	"strings"
)

// StatusProfiles are the status bit layouts by profile name; the files in
// configs/profiles/cjt188 describe the same (a test in package configs
// keeps them equal).
var StatusProfiles = map[string]Layout{
	"cjt188-common":   CommonLayout,
	"cjt188-mirrored": MirroredLayout,
}

// StatusProfileNames lists the profile names, for messages.
func StatusProfileNames() string {
	var n []string
	for k := range StatusProfiles {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}
