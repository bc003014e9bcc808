package main

import (
	"flag"
	"strings"
	"time"

	"tidegate/configs"
	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
)

// lineFlags are how the stand-alone verbs (read --port, scan --port) reach a
// bus the daemon does not hold.
type lineFlags struct {
	port, protocol, parity string
	baud                   int
	timeout                time.Duration
}

func (l *lineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.port, "port", "", "serial device (e.g. /dev/ttyUSB0) or host:port of a converter")
	fs.StringVar(&l.protocol, "protocol", "modbus", "modbus | mbus | modbus-tcp | cjt188")
	fs.IntVar(&l.baud, "baud", 0, "baud rate (default 9600 modbus, 2400 mbus and cjt188)")
	fs.StringVar(&l.parity, "parity", "", "none | even | odd (default none modbus, even mbus and cjt188)")
	fs.DurationVar(&l.timeout, "timeout", 0, "answer timeout (default from the baud rate)")
}

func (l *lineFlags) link() link.Config {
	c := link.Config{Baud: l.baud}
	if isHostPort(l.port) {
		c.TCP = l.port
	} else {
		c.Device = l.port
	}
	if c.Baud == 0 {
		c.Baud = 9600
		if l.protocol == "mbus" || l.protocol == "cjt188" {
			c.Baud = 2400
		}
	}
	switch strings.ToLower(l.parity) {
	case "even", "e":
		c.Parity = "E"
	case "odd", "o":
		c.Parity = "O"
	case "none", "n":
		c.Parity = "N"
	default:
		c.Parity = "N"
		if l.protocol == "mbus" || l.protocol == "cjt188" {
			c.Parity = "E"
		}
	}
	return c
}

func isHostPort(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, ".") && strings.Contains(p, ":")
}

// findProfile loads a profile by file path (NAME.yaml), or by name from the
// built-in set and /etc/tidegate/profiles.
func findProfile(name string) (*pmodbus.Profile, error) {
	if strings.HasSuffix(name, ".yaml") {
		return configs.LoadProfile(name)
	}
	set, err := configs.Profiles()
	if p := set[name]; p != nil {
		return p, nil
	}
	if err != nil {
		return nil, usageErrorf("profile %q not found (and %v)", name, err)
	}
	return nil, usageErrorf("profile %q not found; nearest: %s ('tidegate profiles' lists them; add NAME.yaml to %s or give a file)",
		name, strings.Join(configs.Nearest(name, set), ", "), configs.SystemProfileDir)
}
