package configs

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	pcjt "tidegate/protocol/cjt188"
)

// StatusProfile is a CJ/T 188 profile file: a vendor's status bit layout.
type StatusProfile struct {
	Name   string
	Model  string
	Source string
	Layout pcjt.Layout
}

// ParseStatusProfile decodes a profile file's bytes.
func ParseStatusProfile(file string, data []byte) (StatusProfile, error) {
	var y struct {
		Name     string `yaml:"name"`
		Protocol string `yaml:"protocol"`
		Model    string `yaml:"model"`
		Source   string `yaml:"source"`
		Status   struct {
			ValveBits  []uint8 `yaml:"valve_bits"` // [low, high]: the bits of the valve code 00 open, 01 closed, 11 abnormal
			BatteryBit uint8   `yaml:"battery_bit"`
		} `yaml:"status"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil {
		return StatusProfile{}, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case y.Name == "" || y.Source == "":
		return StatusProfile{}, fmt.Errorf("%s: name and source are required", file)
	case y.Protocol != "cjt188":
		return StatusProfile{}, fmt.Errorf("%s: protocol %q, want cjt188", file, y.Protocol)
	case len(y.Status.ValveBits) != 2:
		return StatusProfile{}, fmt.Errorf("%s: status.valve_bits: want [low, high], two bit numbers", file)
	}
	l := pcjt.Layout{ValveLow: y.Status.ValveBits[0], ValveHigh: y.Status.ValveBits[1], Battery: y.Status.BatteryBit}
	if err := l.Check(); err != nil {
		return StatusProfile{}, fmt.Errorf("%s: %w", file, err)
	}
	return StatusProfile{Name: y.Name, Model: y.Model, Source: y.Source, Layout: l}, nil
}
