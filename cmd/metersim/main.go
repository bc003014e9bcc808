// Command metersim runs virtual water meters on pseudo-terminals and TCP
// (`metersim --config FILE`), and writes simulated samples with their ground
// truth without any serial I/O (`metersim samples ...`).
package main

import (
	"context"
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
