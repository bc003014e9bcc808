package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"go.yaml.in/yaml/v3"

	"tidegate/uplink"
)

// Environment variables that override secrets, so they need not sit in the file.
const (
	EnvMQTTUsername = "TIDEGATE_MQTT_USERNAME"
	EnvMQTTPassword = "TIDEGATE_MQTT_PASSWORD"
)

// Load reads, decodes, defaults and validates one config file. getenv supplies
// secret overrides (os.Getenv in the daemon; a map in tests). A file with
// problems returns *Problems (wrapping ErrInvalid) listing all of them.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data, getenv)
}

// Parse is Load on bytes already read; name is used in problem positions.
func Parse(name string, data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ps := &Problems{File: filepath.Base(name)}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			ps.List = append(ps.List, Problem{File: ps.File, What: "the file is empty; run 'tidegate config init' for a starter config"})
			return nil, ps
		}
		p := syntaxProblem(ps.File, data, err)
		ps.List = append(ps.List, p)
		return nil, ps
	}
	c := &Config{File: name}
	d := &decoder{problems: ps, nodes: map[string]*yaml.Node{}}
	d.decode(&root, reflect.ValueOf(c).Elem(), "")
	c.Hash, c.Source = hashOf(data), data
	c.Defaults()
	c.secrets(getenv, ps, d.nodes)
	c.validate(ps, d.nodes)
	c.loadProfiles(ps, d.nodes)
	if len(ps.List) > 0 {
		return nil, ps
	}
	return c, nil
}

// secrets applies environment overrides and reads the password file. The
// password never appears in problems or logs.
func (c *Config) secrets(getenv func(string) string, ps *Problems, nodes map[string]*yaml.Node) {
	if u := getenv(EnvMQTTUsername); u != "" {
		c.MQTT.Username = u
	}
	if p := getenv(EnvMQTTPassword); p != "" {
		c.MQTT.Password = p
		return
	}
	if c.MQTT.PasswordFile == "" {
		return
	}
	if c.MQTT.Password != "" {
		ps.at(nodes["mqtt.password_file"], "mqtt.password_file", "set either password or password_file, not both")
		return
	}
	pw, err := uplink.ReadPasswordFile(c.MQTT.PasswordFile)
	if err != nil {
		ps.at(nodes["mqtt.password_file"], "mqtt.password_file", "cannot read %s (%v); or set %s", c.MQTT.PasswordFile, unwrapPathErr(err), EnvMQTTPassword)
		return
	}
	c.MQTT.Password = pw
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
