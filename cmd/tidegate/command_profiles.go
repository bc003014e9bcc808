package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/configs"
	pmodbus "tidegate/protocol/modbus"
)

// profileJSON is one profile as `tidegate profiles --json` prints it.
type profileJSON struct {
	Name      string   `json:"name"`
	Model     string   `json:"model"`
	Source    string   `json:"source"`   // "built-in:FILE" or the file it was read from
	Document  string   `json:"document"` // the published register map it follows
	Registers []string `json:"registers"`
}

// runProfiles lists the Modbus profiles a meter's `profile:` may name: the
// built-in ones, /etc/tidegate/profiles, and with --config the config's
// profile_dirs, each overriding the ones before it by name.
func runProfiles(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("profiles", e)
	cfgFlag := fs.String("config", "", "also the profile_dirs of this config file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	var set map[string]*pmodbus.Profile
	if *cfgFlag != "" {
		c, err := config.Load(*cfgFlag, nil)
		if err != nil {
			return usageError(err)
		}
		set = c.Profiles
	} else {
		var err error
		if set, err = configs.Profiles(); err != nil {
			fmt.Fprintf(e.stderr, "tidegate profiles: %v\n", err)
		}
	}
	var list []profileJSON
	for _, n := range configs.Names(set) {
		p := set[n]
		j := profileJSON{Name: p.Name, Model: p.Model, Source: p.File, Document: p.Source}
		for _, r := range p.Registers {
			j.Registers = append(j.Registers, r.Quantity)
		}
		list = append(list, j)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODEL\tSOURCE\tREGISTERS")
	for _, j := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Name, j.Model, j.Source, strings.Join(j.Registers, " "))
	}
	return tw.Flush()
}
