package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// demoSummary is what the demo prints about the config it runs.
type demoSummary struct {
	gateway, prefix, socket string
	buses, meters           int
}

// demoConfig copies the tidegate config, pointing the parts that must be the
// demo's own (serial ports from metersim, the broker's port, socket, buffer)
// at this run, so the demo needs no root, no fixed device and no fixed port.
// It edits the YAML tree, so the written file keeps the original's comments.
func demoConfig(path, dir, brokerAddr string, ports map[string]string) (string, demoSummary, error) {
	var s demoSummary
	data, err := os.ReadFile(path)
	if err != nil {
		return "", s, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return "", s, fmt.Errorf("%s: %v", path, err)
	}
	doc := root.Content[0]
	s.socket = filepath.Join(dir, "api.sock")
	set(doc, []string{"api", "socket"}, s.socket)
	set(doc, []string{"buffer", "path"}, filepath.Join(dir, "buffer.db"))
	set(doc, []string{"mqtt", "broker"}, "tcp://"+brokerAddr)
	s.gateway = get(doc, "gateway", "id")
	s.prefix = get(doc, "mqtt", "topic_prefix")
	if s.prefix == "" {
		s.prefix = "tidegate"
	}
	if buses := child(doc, "buses"); buses != nil {
		s.buses = len(buses.Content)
		for _, b := range buses.Content {
			name := get(b, "name")
			if p, ok := ports[name]; ok {
				delKey(b, "tcp")
				delKey(b, "device")
				if isTCP(p) {
					set(b, []string{"tcp"}, p)
				} else {
					set(b, []string{"device"}, p)
				}
			}
		}
	}
	if m := child(doc, "meters"); m != nil {
		s.meters = len(m.Content)
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		return "", s, err
	}
	cfgPath := filepath.Join(dir, "tidegate.yaml")
	return cfgPath, s, os.WriteFile(cfgPath, out, 0o600)
}

func isTCP(p string) bool {
	return len(p) > 0 && p[0] != '/' && p[0] != '.'
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func get(n *yaml.Node, keys ...string) string {
	for _, k := range keys {
		n = child(n, k)
	}
	if n == nil {
		return ""
	}
	return n.Value
}

func set(n *yaml.Node, keys []string, value string) {
	for i, k := range keys {
		c := child(n, k)
		if c == nil {
			kind := yaml.MappingNode
			if i == len(keys)-1 {
				kind = yaml.ScalarNode
			}
			c = &yaml.Node{Kind: kind}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, c)
		}
		n = c
	}
	n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", value, 0
}

func delKey(n *yaml.Node, key string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
	}
}
