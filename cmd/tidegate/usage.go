package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"tidegate/reading"
)

// synopses is what `tidegate VERB --help` prints above the flags, keyed by
// the flag set's name. Every --flag written here must be one the verb
// defines (TestUsageFlagsExist), so a usage line runs as printed.
func synopses() map[string]string {
	return map[string]string{
		"config init": "tidegate config init [--gateway ID] [--device DEV] [--protocol modbus|mbus] [--baud N] [--broker URL] [--buffer FILE] [--socket FILE] [-o FILE [--force]]\n" +
			"writes a commented starter config (to standard output unless -o)",
		"config validate": "tidegate config validate [FILE]\nlists every problem as file:line:col: path: what is expected; exit 2 if there is any",
		"run":             "tidegate run [--config FILE]\nthe daemon: SIGHUP reloads the config, SIGTERM stops cleanly; exit 2 if the config has problems",
		"status":          "tidegate status [--json] [--config FILE | --socket FILE]",
		"tail":            "tidegate tail [--meter ID] [-n N] [--json] [--config FILE | --socket FILE]",
		"read": "tidegate read METER [--json]                      (through the running daemon)\n" +
			"       tidegate read --port DEV --address N --profile NAME [--json]    (stand-alone, Modbus)\n" +
			"       tidegate read --port DEV --protocol mbus --address N [--json]     (stand-alone, M-Bus)\n" +
			"       tidegate read --port DEV --protocol cjt188 --address 78330011223344 [--json]  (stand-alone, CJ/T 188: the label's 14 digits)\n" +
			"       tidegate read --port DEV --address N --raw START COUNT [--as TYPE[:ORDER]] [--json]  (an unknown Modbus meter)",
		"scan": "tidegate scan --port DEV|HOST:PORT --protocol modbus|mbus|cjt188 --bus NAME [--secondary] [--from N] [--to N] [--append-config FILE]\n" +
			"cjt188: the broadcast read-address; one meter is found with its address, several answering at once are reported as such",
		"buffer stats":   "tidegate buffer stats [--json] [--path FILE | --config FILE]",
		"buffer export":  "tidegate buffer export [--from N] [--to N] [--gateway ID] [--path FILE | --config FILE]",
		"buffer compact": "tidegate buffer compact [--path FILE | --config FILE]",
		"filter": "tidegate filter [--config FILE] < samples.csv > filtered.csv\n" +
			"input columns:  " + samplesHeader + "\n" +
			"                (RFC 3339 time; meter id; the meter's forward and reverse totals in m3; flow in m3/h, may be empty)\n" +
			"output columns: " + filteredHeader + "\n" +
			"                (one row per interval; flags any of " + strings.Join(reading.FilterFlags(0xFF).Names(), ", ") + ", joined by '|')",
		"filter score": "tidegate filter score --truth truth.csv [--config FILE] < samples.csv\n" +
			"scores the filter (and the naive forward - reverse) against metersim's ground truth (metersim samples writes both)",
		"decode mbus": "tidegate decode mbus|cjt188 HEX|-\none M-Bus or CJ/T 188 frame as hex ('-' reads it from standard input), decoded to JSON",
		"profiles":    "tidegate profiles [--config FILE] [--json]\nthe Modbus profiles a meter's profile: may name (built in, " + "/etc/tidegate/profiles, the config's profile_dirs)",
		"version":     "tidegate version [--json]",
		"valve":       "tidegate valve METER open|close [--json] [--config FILE | --socket FILE]\nCJ/T 188 meters with valve: true, through the running daemon: write, check, read the status back",
	}
}

// flagOutput takes what package flag writes: a parse error only (the error
// itself reaches the user through dispatch), so it notes that one happened.
type flagOutput struct{ failed bool }

func (o *flagOutput) Write(p []byte) (int, error) { o.failed = true; return len(p), nil }

// newFlagSet makes a verb's flag set. -h/--help prints the synopsis and every
// flag to standard output and the verb exits 0; a bad flag prints the
// synopsis to standard error and exits 2.
func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	out := &flagOutput{}
	fs.SetOutput(out)
	fs.Usage = func() {
		if out.failed {
			fmt.Fprintf(e.stderr, "usage: %s\n(tidegate %s --help lists every flag)\n", firstLine(synopses()[name], name), name)
			return
		}
		printHelp(e.stdout, fs, name)
	}
	e.flagSets = append(e.flagSets, fs)
	return fs
}

func printHelp(w io.Writer, fs *flag.FlagSet, name string) {
	syn := synopses()[name]
	if syn == "" {
		syn = "tidegate " + name
	}
	fmt.Fprintf(w, "usage: %s\n", syn)
	if fs == nil {
		return
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	o := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(o)
}

func firstLine(s, name string) string {
	if s == "" {
		return "tidegate " + name
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// wantsHelp reports whether args ask for help, for verbs that take their
// arguments without a flag set (decode, and verbs with subcommands).
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			return true
		}
	}
	return false
}

// helpFor prints a verb's help without a flag set and returns the error that
// makes dispatch exit 0.
func helpFor(e *env, names ...string) error {
	for i, n := range names {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		printHelp(e.stdout, nil, n)
	}
	return flag.ErrHelp
}

// isHelp is an error that only says help was printed.
func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

// parseInterspersed parses flags wherever they stand among the positional
// arguments (`read flat-01 --json` as well as `read --json flat-01`), which
// package flag alone stops at; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
