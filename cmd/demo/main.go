// Command demo is `make demo`: simulated meters (metersim) → `tidegate run` →
// an embedded MQTT broker → a subscriber's view on the terminal, for a minute
// (-seconds, DEMO_SECONDS; 0 runs until Ctrl-C), then everything is stopped
// cleanly. Within the minute it shows a leak flagged, phantom volume removed
// on a vacant flat and a faulty meter going offline with its reason.
//
// It is its own small program rather than a tidegate verb so that the
// embedded broker never ends up in the binary shipped to concentrators.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"tidegate/uplink/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	bin       string
	config    string
	simConfig string
	seconds   time.Duration
	keep      bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.bin, "bin", "bin", "folder with the tidegate and metersim binaries")
	fs.StringVar(&o.config, "config", "configs/demo.yaml", "tidegate config; devices, broker, socket and buffer are pointed at the demo's own")
	fs.StringVar(&o.simConfig, "sim", "configs/demo/sim.yaml", "metersim config")
	fs.BoolVar(&o.keep, "keep", false, "keep the demo's temporary folder (logs, buffer) after it ends")
	secs := fs.Int("seconds", envInt("DEMO_SECONDS", 60), "stop after this many seconds (0 = run until Ctrl-C); default $DEMO_SECONDS or 60")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: demo [--bin DIR] [--config FILE] [--sim FILE] [-seconds N] [-keep]\n\nflags:")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return 2
	}
	o.seconds = time.Duration(*secs) * time.Second
	if o.seconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.seconds)
		defer cancel()
	}
	if err := demo(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

func envInt(name string, def int) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return def
	}
	return n
}

func demo(ctx context.Context, o options, stdout, stderr io.Writer) error {
	// The subscriber's view prints from the broker's goroutines: one lock
	// for every line on the terminal.
	stdout = &lockedWriter{w: stdout}
	dir, err := os.MkdirTemp("", "tidegate-demo-")
	if err != nil {
		return err
	}
	// The logs stay where the demo says they are; the buffer and socket go
	// unless -keep.
	if !o.keep {
		defer func() {
			for _, f := range []string{"buffer.db", "api.sock", "ports.json"} {
				os.Remove(filepath.Join(dir, f))
			}
		}()
	}
	for _, b := range []string{"tidegate", "metersim"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("%s not built (run 'make build'): %w", b, err)
		}
	}

	br, err := broker.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	defer br.Close()
	fmt.Fprintf(stdout, "broker   mqtt://%s (embedded, loopback only)\n", br.Addr())

	sim, err := startSimulator(ctx, o, dir, simStart(time.Now()), stderr)
	if err != nil {
		return fmt.Errorf("metersim: %w", err)
	}
	defer sim.stop()
	if sim.note != "" {
		fmt.Fprintf(stdout, "metersim %s\n", sim.note)
	}

	cfgPath, cfg, err := demoConfig(o.config, dir, br.Addr(), sim.ports)
	if err != nil {
		return err
	}
	tg, err := startProcess(filepath.Join(o.bin, "tidegate"), []string{"run", "--config", cfgPath}, filepath.Join(dir, "tidegate.log"))
	if err != nil {
		return fmt.Errorf("tidegate: %w", err)
	}
	fmt.Fprintf(stdout, "tidegate gateway %s, %d buses, %d meters\n", cfg.gateway, cfg.buses, cfg.meters)
	fmt.Fprintf(stdout, "logs     %s, %s (kept after the demo)\n", tg.logPath, filepath.Join(dir, "metersim.log"))
	if o.seconds > 0 {
		fmt.Fprintf(stdout, "runs     %s, then stops everything (Ctrl-C stops it sooner; -seconds 0 runs until Ctrl-C)\n", o.seconds)
	} else {
		fmt.Fprintln(stdout, "runs     until Ctrl-C")
	}
	fmt.Fprintln(stdout)
	legend(stdout)

	view := newView(stdout)
	if err := br.Subscribe(cfg.prefix+"/#", view.onMessage); err != nil {
		return err
	}
	go view.tailFallback(ctx, filepath.Join(o.bin, "tidegate"), cfg.socket)

	select {
	case <-ctx.Done():
	case err := <-tg.exited:
		fmt.Fprintf(stdout, "\ntidegate stopped on its own (%v); its log:\n", err)
		_ = tg.printLogTail(stdout, 20)
		return errors.New("tidegate exited early")
	}
	fmt.Fprintln(stdout, "\nstopping: tidegate (SIGTERM) …")
	code, err := tg.terminate(15 * time.Second)
	if err != nil || code != 0 {
		_ = tg.printLogTail(stdout, 20)
		return fmt.Errorf("tidegate did not stop cleanly: exit %d %v", code, err)
	}
	sim.stop()
	view.summary()
	fmt.Fprintf(stdout, "logs kept: %s, %s\n", tg.logPath, filepath.Join(dir, "metersim.log"))
	fmt.Fprintln(stdout, "demo done: every process stopped cleanly")
	return nil
}

// simStart is 00:55 local today: the simulation begins just before the
// night (01-05 h) in which the filter looks for leaks, so the M-Bus bus's
// accelerated clock carries the leaking flat through a whole night in the
// demo's first minute.
func simStart(now time.Time) time.Time {
	y, m, d := now.Date()
	return time.Date(y, m, d, 0, 55, 0, 0, now.Location())
}

// legend says what the columns mean before the first row.
func legend(w io.Writer) {
	fmt.Fprint(w, `columns  TIME     when the subscriber got it     TOPIC    readings, events or status
         METER    the meter's id                 FORWARD  the meter's forward total, m3 (what its display shows)
         USE      real consumption in the interval since the meter's previous reading, m3 (filtered)
         PHANTOM  volume the filter removed from the interval as self-rotation (pressure surges), m3
         NOTE     filter flags (leak, self_rotation, ...), the meter's own alarms, or why a read failed

`)
}

// lockedWriter serialises writes from several goroutines; fmt writes a line
// in one Write.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
