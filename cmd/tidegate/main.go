// Command tidegate is the concentrator daemon (`tidegate run`) and the field
// technician's tool (every other verb). One file per verb: command_<verb>.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad usage, bad config, bad input
)

// env is what a command may touch of the outside world, so tests can run
// commands in-process with buffers.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// flagSets are the flag sets the command made, so a test can check its
	// --help lists every flag.
	flagSets []*flag.FlagSet
}

type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands is the verb table. Each verb lives in command_<verb>.go.
func commands() map[string]command {
	return map[string]command{
		"version":  {"print version and build information", runVersion},
		"config":   {"config init (starter config) | config validate [FILE]", runConfig},
		"filter":   {"filter [--config F] < samples.csv > out.csv | filter score --truth T < samples.csv", runFilter},
		"run":      {"run the daemon: run --config FILE", runRun},
		"decode":   {"decode one wire frame: decode mbus|cjt188 HEX|- (prints JSON)", runDecode},
		"status":   {"one-screen health of the running daemon", runStatus},
		"tail":     {"follow readings and events: tail [--meter M]", runTail},
		"buffer":   {"inspect the buffer file offline: buffer stats|export [--from N --to N]|compact [--path F]", runBuffer},
		"scan":     {"find meters on a bus: scan --port P --protocol modbus|mbus --bus NAME [--secondary] [--append-config F]", runScan},
		"read":     {"read one meter now: read METER | read --port P --address N --profile X [--raw START COUNT]", runRead},
		"profiles": {"list the Modbus profiles (built in, /etc/tidegate/profiles, profile_dirs)", runProfiles},
		"valve":    {"open or close a CJ/T 188 meter's valve through the daemon: valve METER open|close (meters with valve: true)", runValve},
	}
}

// exitError carries an exit code through a command's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports bad usage or bad input: exit code 2.
func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// usageError wraps err as bad input: exit code 2.
func usageError(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitUsage, err: err}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, e *env, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			usage(e.stderr, cmds)
			return exitUsage
		}
		usage(e.stdout, cmds)
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "tidegate: unknown command %q (try 'tidegate help')\n", args[0])
		return exitUsage
	}
	err := c.run(ctx, e, args[1:])
	if err == nil || isHelp(err) {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "tidegate %s: %v\n", args[0], err)
	var xe *exitError
	if errors.As(err, &xe) {
		return xe.code
	}
	return exitFailure
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: tidegate <command> [arguments]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\n'tidegate COMMAND --help' shows a command's flags")
	fmt.Fprintln(w, "exit codes: 0 ok, 1 failure, 2 usage, config or input error")
}
