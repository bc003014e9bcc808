package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

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

// appendMeters adds found meters to the config file's meters list, editing
// the YAML tree so the technician's comments survive; meters already
// configured at the same address are skipped. The result must validate
// before it replaces the file (atomically), so a scan never leaves a config
// the daemon would refuse. It returns how many were added.
func appendMeters(path string, found []foundMeter) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	old, err := config.Parse(path, data, os.Getenv)
	if err != nil {
		return 0, fmt.Errorf("the config has problems already; fix them first:\n%w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return 0, fmt.Errorf("%s: %v", path, err)
	}
	doc := root.Content[0]
	var seq *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "meters" {
			seq = doc.Content[i+1]
		}
	}
	if seq == nil {
		seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "meters"}, seq)
	}
	if seq.Kind != yaml.SequenceNode {
		return 0, fmt.Errorf("%s: meters is not a list", path)
	}
	seq.Style = 0 // `meters: []` from config init becomes a block list
	have := map[string]bool{}
	for _, m := range old.Meters {
		have[m.Bus+"/"+strconv.Itoa(m.Address)] = m.Secondary == ""
		if m.Secondary != "" {
			have[m.Bus+"/s/"+m.Secondary] = true
		}
	}
	added := 0
	for _, f := range found {
		key := f.Bus + "/" + strconv.Itoa(f.Address)
		if f.Secondary != "" {
			key = f.Bus + "/s/" + f.Secondary
		}
		if have[key] {
			continue
		}
		have[key] = true
		kv := []string{"id", f.id(), "number", "", "bus", f.Bus}
		if f.Secondary != "" {
			kv = append(kv, "secondary", f.Secondary)
		} else {
			kv = append(kv, "address", strconv.Itoa(f.Address))
		}
		if f.Profile != "" {
			kv = append(kv, "profile", f.Profile)
		}
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
		for i := 0; i < len(kv); i += 2 {
			v := &yaml.Node{Kind: yaml.ScalarNode, Value: kv[i+1]}
			if kv[i] == "secondary" || kv[i] == "number" {
				v.Style = yaml.DoubleQuotedStyle
			}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: kv[i]}, v)
		}
		m.LineComment = "found by scan"
		if f.Note != "" {
			m.LineComment += ": " + f.Note
		}
		seq.Content = append(seq.Content, m)
		added++
	}
	if added == 0 {
		return 0, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return 0, err
	}
	if _, err := config.Parse(path, buf.Bytes(), os.Getenv); err != nil {
		return 0, fmt.Errorf("the config with the found meters would not validate (nothing written):\n%w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tidegate-*.yaml")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	if fi, err := os.Stat(path); err == nil {
		_ = tmp.Chmod(fi.Mode().Perm())
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return added, os.Rename(tmp.Name(), path)
}
