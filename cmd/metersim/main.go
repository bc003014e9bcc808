// Command metersim runs virtual water meters on pseudo-terminals and TCP
// (`metersim --config FILE`), and writes simulated samples with their ground
// truth without any serial I/O (`metersim samples ...`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// verbs other than the default "run the simulator". Each lives in command_<verb>.go.
func verbs() map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
		"samples": runSamples,
	}
}

// parseFlags parses a verb's flags. --help prints the synopsis and every
// flag to stdout (exit 0); a bad flag prints the error and the synopsis to
// stderr (exit 2). done is false when the verb should go on.
func parseFlags(fs *flag.FlagSet, args []string, synopsis string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "usage: %s\n\nflags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\nusage: %s\n", fs.Name(), err, synopsis)
		return 2, true
	}
	return 0, false
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	if len(args) > 0 {
		if v, ok := verbs()[args[0]]; ok {
			os.Exit(v(ctx, args[1:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(runSimulator(ctx, args, os.Stdout, os.Stderr))
}
