package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	fs.StringVar(&l.protocol, "protocol", "modbus", "modbus | mbus | modbus-tcp")
	fs.IntVar(&l.baud, "baud", 0, "baud rate (default 9600 modbus, 2400 mbus)")
	fs.StringVar(&l.parity, "parity", "", "none | even | odd (default none modbus, even mbus)")
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
		if l.protocol == "mbus" {
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
		if l.protocol == "mbus" {
			c.Parity = "E"
		}
	}
	return c
}

func isHostPort(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, ".") && strings.Contains(p, ":")
}

// findProfile loads a profile by file path or by name from the usual folders.
func findProfile(name string) (*pmodbus.Profile, error) {
	if strings.HasSuffix(name, ".yaml") {
		return pmodbus.LoadProfile(name)
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "configs", "profiles"))
	}
	// configs/profiles in the working directory or a parent (a checkout),
	// then the installed folder.
	if wd, err := os.Getwd(); err == nil {
		for d, i := wd, 0; i < 4; d, i = filepath.Dir(d), i+1 {
			dirs = append(dirs, filepath.Join(d, "configs", "profiles"))
		}
	}
	dirs = append(dirs, "/etc/tidegate/profiles")
	for _, d := range dirs {
		p := filepath.Join(d, name+".yaml")
		if _, err := os.Stat(p); err == nil {
			return pmodbus.LoadProfile(p)
		}
	}
	return nil, usageErrorf("profile %q not found in %s", name, strings.Join(dirs, ", "))
}
