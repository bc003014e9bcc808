package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"tidegate/cmd/tidegate/internal/config"
)

// foundMeter is one meter a scan found, as it goes into the config.
type foundMeter struct {
	Bus       string
	Address   int    // primary address / unit id; -1 when only a secondary address is known
	Secondary string // M-Bus secondary address (8 digits or 16 hex)
	Profile   string // Modbus profile, when the scan could tell
	Note      string // e.g. manufacturer, medium: written as a comment
}

func (f foundMeter) id() string {
	if f.Secondary != "" {
		return f.Bus + "-" + f.Secondary
	}
	return f.Bus + "-" + strconv.Itoa(f.Address)
}

// appendResult says what appendMeters did.
type appendResult struct {
	Added    int      // meters written as config entries
	ToFill   int      // Modbus meters written as commented entries: their profile is to fill in
	Skipped  []string // found meters the file already has, and why
	BusAdded bool     // the bus was not in the file and was added
	BusName  string
}

func (r appendResult) report(w io.Writer, path string) {
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "not added: %s\n", s)
	}
	if r.BusAdded {
		fmt.Fprintf(w, "bus %s added to %s from the scan's port settings\n", r.BusName, path)
	}
	if r.Added > 0 {
		fmt.Fprintf(w, "%d meters added to %s (check poll intervals, then 'tidegate config validate')\n", r.Added, path)
	}
	if r.ToFill > 0 {
		fmt.Fprintf(w, "%d Modbus meters written as comments in %s: fill in each profile (%s) and remove the '#' (or scan again with --profile NAME)\n", r.ToFill, path, profileToFill)
	}
	if r.Added == 0 && r.ToFill == 0 {
		fmt.Fprintf(w, "nothing added to %s\n", path)
	}
}

// profileToFill marks the profile a technician must set in a Modbus meter
// written without one.
const profileToFill = "PROFILE-TO-FILL"

// appendMeters adds found meters to the config file. The file is edited as
// text: new list items go at the end of the meters (and, if needed, buses)
// list and every other byte stays as it was, comments, alignment and blank
// lines included. A meter the file already has on that bus, by primary or
// by secondary address, is skipped; identity, where given, reads a found
// M-Bus meter for the address form the scan did not give. A Modbus meter
// without a profile is written as a commented entry with the profile to
// fill marked, so the file still validates. The result must validate before
// it replaces the file (atomically).
func appendMeters(path string, found []foundMeter, nb config.Bus, identity func(foundMeter) (int, string)) (appendResult, error) {
	res := appendResult{BusName: nb.Name}
	data, err := os.ReadFile(path)
	if err != nil {
		return res, err
	}
	old, err := config.Parse(path, data, os.Getenv)
	if err != nil {
		return res, fmt.Errorf("the config has problems already; fix them first:\n%w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return res, fmt.Errorf("%s: not a YAML mapping: %v", path, err)
	}
	doc := root.Content[0]

	protocol := nb.Protocol
	hasBus := false
	for _, b := range old.Buses {
		if b.Name == nb.Name {
			hasBus, protocol = true, b.Protocol
		}
	}
	primary, secondary := map[int]string{}, map[string]string{}
	for _, m := range old.Meters {
		if m.Bus != nb.Name {
			continue
		}
		if m.Secondary != "" {
			secondary[strings.ToUpper(m.Secondary[:8])] = m.ID
		} else {
			primary[m.Address] = m.ID
		}
	}
	var meters []string
	for _, f := range found {
		addr, sec := f.Address, f.Secondary
		if identity != nil && ((sec != "" && len(primary) > 0) || (sec == "" && len(secondary) > 0)) {
			a, id := identity(f)
			if sec != "" {
				addr = a
			} else {
				sec = id
			}
		}
		if id, ok := primary[addr]; ok && addr >= 0 {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: the file has meter %s at address %d", f.id(), id, addr))
			continue
		}
		if id, ok := secondary[strings.ToUpper(sec)]; ok && sec != "" {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: the file has meter %s with secondary address %s", f.id(), id, sec))
			continue
		}
		if f.Secondary != "" {
			secondary[strings.ToUpper(f.Secondary)] = f.id()
		} else {
			primary[f.Address] = f.id()
		}
		item := "{id: " + f.id() + `, number: "", bus: ` + nb.Name
		if f.Secondary != "" {
			item += `, secondary: "` + f.Secondary + `"`
		} else {
			item += ", address: " + strconv.Itoa(f.Address)
		}
		comment := "found by scan"
		if f.Note != "" {
			comment += ": " + f.Note
		}
		modbus := protocol == config.ProtoModbus || protocol == config.ProtoModbusTCP
		switch {
		case modbus && f.Profile == "":
			item = "# - " + item + ", profile: " + profileToFill + "}  # " + comment + "; set the profile and remove the leading '#'"
			res.ToFill++
		case modbus:
			item = "- " + item + ", profile: " + f.Profile + "}  # " + comment
			res.Added++
		default:
			item = "- " + item + "}  # " + comment
			res.Added++
		}
		meters = append(meters, item)
	}
	if len(meters) == 0 {
		return res, nil
	}
	ed := config.NewTextEdit(data)
	if !hasBus {
		b := "{name: " + nb.Name + ", protocol: " + nb.Protocol
		if nb.Device != "" {
			b += ", device: " + nb.Device
		} else {
			b += ", tcp: " + nb.TCP
		}
		if nb.Baud != 0 {
			b += ", baud: " + strconv.Itoa(nb.Baud)
		}
		if nb.Parity != "" {
			b += ", parity: " + nb.Parity
		}
		b += "}  # added by scan"
		if err := ed.AppendItems(doc, "buses", []string{"- " + b}); err != nil {
			return res, fmt.Errorf("%s: %w", path, err)
		}
		res.BusAdded = true
	}
	if err := ed.AppendItems(doc, "meters", meters); err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	out := ed.Bytes()
	if _, err := config.Parse(path, out, os.Getenv); err != nil {
		return appendResult{}, fmt.Errorf("the config with the found meters would not validate (nothing written):\n%w", err)
	}
	return res, config.WriteFile(path, out)
}
