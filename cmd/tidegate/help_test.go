package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// helpRun runs one invocation in-process and also returns the flag sets it made.
func helpRun(t *testing.T, args ...string) (int, string, string, *env) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code := dispatch(context.Background(), e, args)
	return code, out.String(), errb.String(), e
}

// helpInvocations is every verb and subcommand, as a technician would ask for help.
var helpInvocations = [][]string{
	{"config", "init"}, {"config", "validate"}, {"run"}, {"status"}, {"tail"}, {"read"}, {"scan"},
	{"buffer", "stats"}, {"buffer", "export"}, {"buffer", "compact"}, {"filter"}, {"filter", "score"},
	{"decode", "mbus"}, {"profiles"}, {"version"}, {"config"}, {"buffer"}, {"decode"},
}

// Help is not an error: exit 0, usage on stdout, every flag listed.
func TestHelpExitsZero(t *testing.T) {
	for _, inv := range helpInvocations {
		for _, h := range []string{"--help", "-h"} {
			args := append(append([]string{}, inv...), h)
			code, out, errOut, e := helpRun(t, args...)
			if code != exitOK || errOut != "" || !strings.HasPrefix(out, "usage: tidegate ") {
				t.Errorf("tidegate %s: code %d stdout %q stderr %q; want 0 and usage on stdout", strings.Join(args, " "), code, out, errOut)
				continue
			}
			for _, fs := range e.flagSets {
				fs.VisitAll(func(f *flag.Flag) {
					if !strings.Contains(out, "  -"+f.Name) {
						t.Errorf("tidegate %s: help does not list -%s", strings.Join(args, " "), f.Name)
					}
				})
			}
		}
	}
	code, out, _, _ := helpRun(t, "filter", "--help")
	if code != exitOK || !strings.Contains(out, samplesHeader) || !strings.Contains(out, filteredHeader) {
		t.Errorf("filter --help does not give the CSV columns:\n%s", out)
	}
	code, out, _, _ = helpRun(t, "scan", "--help")
	if code != exitOK || !strings.Contains(out, "--bus NAME") {
		t.Errorf("scan usage lacks --bus:\n%s", out)
	}
	// A bad flag is still bad usage, with the synopsis on stderr.
	code, out, errOut, _ := helpRun(t, "read", "--no-such-flag")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "usage: tidegate read") || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("read --no-such-flag: code %d stdout %q stderr %q", code, out, errOut)
	}
}

var usageFlag = regexp.MustCompile(`(?:^|[ \[|])(--?[a-z][a-z0-9-]*)`)

// Every flag a usage line names is one its verb defines: a usage line runs
// as printed.
func TestUsageFlagsExist(t *testing.T) {
	for name, syn := range synopses() {
		_, _, _, e := helpRun(t, append(strings.Fields(name), "--help")...)
		defined := map[string]bool{}
		for _, fs := range e.flagSets {
			fs.VisitAll(func(f *flag.Flag) { defined[f.Name] = true })
		}
		for _, m := range usageFlag.FindAllStringSubmatch(syn, -1) {
			f := strings.TrimLeft(m[1], "-")
			if !defined[f] {
				t.Errorf("usage of %q names %s, which %q does not define", name, m[1], name)
			}
		}
	}
	// The verb table's one-line summaries too, against the flags of the
	// verb and its subcommands.
	for name, c := range commands() {
		defined := map[string]bool{}
		for _, inv := range helpInvocations {
			if inv[0] != name {
				continue
			}
			_, _, _, e := helpRun(t, append(append([]string{}, inv...), "--help")...)
			for _, fs := range e.flagSets {
				fs.VisitAll(func(f *flag.Flag) { defined[f.Name] = true })
			}
		}
		for _, m := range usageFlag.FindAllStringSubmatch(c.summary, -1) {
			if f := strings.TrimLeft(m[1], "-"); !defined[f] {
				t.Errorf("summary of %q names %s, which it does not define", name, m[1])
			}
		}
	}
}

// config init's suggested scan command, on stderr and in the file's comment,
// runs as printed against a simulated bus and adds the meters it finds.
// (M-Bus, so the bus has meters at the starter's defaults; the Modbus
// starter's hint names the same flags and is checked to parse below: a full
// Modbus scan is another minute.)
func TestConfigInitHintRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("needs metersim")
	}
	t.Parallel() // the full scan takes a minute, mostly waiting for silent addresses
	bin := buildBinaries(t)
	dir := t.TempDir()
	ports := startMetersim(t, bin, dir, `buses:
  - name: mb
    protocol: mbus
    baud: 2400
    meters:
      - {id: k1, address: 1, model: flowiq, secondary: "12345611"}
      - {id: k2, address: 2, model: ultrimis, secondary: "12345612"}
`)
	file := filepath.Join(dir, "tidegate.yaml")
	code, _, errOut := runCmd(t, "", "config", "init", "-o", file, "--device", ports["mb"], "--protocol", "mbus", "--broker", "tcp://127.0.0.1:1883")
	if code != exitOK {
		t.Fatalf("config init: %d %s", code, errOut)
	}
	_, hint, ok := strings.Cut(strings.TrimSpace(errOut), "next: ")
	if !ok {
		t.Fatalf("config init printed no next step: %q", errOut)
	}
	data, _ := os.ReadFile(file)
	if !strings.Contains(string(data), "# Find meters with: "+hint+"\n") {
		t.Errorf("the file's comment does not carry the same command %q", hint)
	}
	args := strings.Fields(hint)
	if args[0] != "tidegate" {
		t.Fatalf("hint %q is not a tidegate command", hint)
	}
	// The full scan probes 251 addresses (minutes of timeouts at 2400 baud);
	// an interrupted scan writes nothing, so the range is narrowed to the two
	// meters' addresses, the hint's flags otherwise as printed.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = dispatch(ctx, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, append(args[1:], "--to", "3"))
	if code != exitOK {
		t.Fatalf("%s --to 3: exit %d: %s", hint, code, errb.String())
	}
	data, _ = os.ReadFile(file)
	for _, want := range []string{"address: 1", "address: 2", "bus: bus1"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("after %q the config lacks %q:\n%s\nstdout %s\nstderr %s", hint, want, data, out.String(), errb.String())
		}
	}
}

// The Modbus starter's hint names only flags scan defines.
func TestConfigInitModbusHintParses(t *testing.T) {
	_, _, errOut := runCmd(t, "", "config", "init", "-o", filepath.Join(t.TempDir(), "t.yaml"))
	_, hint, _ := strings.Cut(strings.TrimSpace(errOut), "next: ")
	_, _, _, e := helpRun(t, "scan", "--help")
	for _, a := range strings.Fields(hint) {
		if strings.HasPrefix(a, "-") && e.flagSets[0].Lookup(strings.TrimLeft(a, "-")) == nil {
			t.Errorf("hint %q: scan has no %s", hint, a)
		}
	}
	if !strings.Contains(hint, "--port /dev/ttyUSB0 --protocol modbus") {
		t.Errorf("hint %q does not scan the starter's bus", hint)
	}
}

var quotedCommand = regexp.MustCompile(`'(tidegate [^']+)'`)

// Every command a message tells the user to run names a verb and flags that
// exist, and the ones without side effects run as printed and succeed.
func TestHintsRun(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	triggers := [][]string{
		{"config", "validate", "testdata/config/empty/config.yaml"},        // run 'tidegate config init'
		{"config", "validate", "testdata/config/profile-typo/config.yaml"}, // see 'tidegate profiles'
		{"no-such-verb"},                                     // try 'tidegate help'
		{"status", "--socket", sock},                         // start it with 'tidegate run'
		{"read", "--port", "/dev/null", "--profile", "nope"}, // 'tidegate profiles' lists them
		{"help"}, // 'tidegate COMMAND --help'
	}
	safe := map[string]bool{"tidegate config init": true, "tidegate help": true, "tidegate profiles": true}
	seen := 0
	for _, tr := range triggers {
		_, out, errOut := runCmd(t, "", tr...)
		hints := quotedCommand.FindAllStringSubmatch(out+errOut, -1)
		if len(hints) == 0 {
			t.Errorf("tidegate %s printed no hint: %q", strings.Join(tr, " "), out+errOut)
		}
		for _, h := range hints {
			seen++
			args := strings.Fields(h[1])[1:]
			if _, ok := commands()[args[0]]; !ok && args[0] != "help" && args[0] != "COMMAND" {
				t.Errorf("hint %q names no command", h[1])
				continue
			}
			if args[0] == "COMMAND" {
				continue // a template, checked by TestHelpExitsZero
			}
			_, _, _, e := helpRun(t, append(append([]string{}, args...), "--help")...)
			for _, a := range args {
				if strings.HasPrefix(a, "-") && len(e.flagSets) > 0 && e.flagSets[0].Lookup(strings.TrimLeft(a, "-")) == nil {
					t.Errorf("hint %q: %s is not a flag of %s", h[1], a, args[0])
				}
			}
			if safe[h[1]] {
				if code, _, errOut := runCmd(t, "", args...); code != exitOK {
					t.Errorf("hint %q as printed: exit %d %s", h[1], code, errOut)
				}
			}
		}
	}
	if seen < len(triggers) {
		t.Errorf("only %d hints seen", seen)
	}
}
