package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
)

// defaultBufferPath matches the config default, for a gateway without a
// readable config file.
const defaultBufferPath = "/var/lib/tidegate/buffer.db"

func runBuffer(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("expected 'buffer stats', 'buffer export' or 'buffer compact'")
	}
	if wantsHelp(args[:1]) {
		return helpFor(e, "buffer stats", "buffer export", "buffer compact")
	}
	switch args[0] {
	case "stats":
		return runBufferStats(e, args[1:])
	case "export":
		return runBufferExport(e, args[1:])
	case "compact":
		return runBufferCompact(e, args[1:])
	}
	return usageErrorf("unknown subcommand %q; expected stats, export or compact", args[0])
}

type bufferTarget struct {
	path string
	opt  buffer.Options
	// gateway is the config's gateway.id when the file is that config's
	// buffer.path: only then are its seqs that gateway's.
	gateway string
}

func bufferFlags(fs *flag.FlagSet) (path, cfg *string) {
	path = fs.String("path", "", "buffer file (default: buffer.path of the config, else "+defaultBufferPath+")")
	cfg = fs.String("config", "", "config file to take buffer.path from (default $TIDEGATE_CONFIG or "+defaultConfigPath+")")
	return path, cfg
}

// resolveBuffer finds the file: --path, else the config's buffer.path, else
// the default. A config named explicitly must load.
func resolveBuffer(e *env, path, cfg string) (bufferTarget, error) {
	t := bufferTarget{opt: buffer.Options{NoRecover: true, Logger: stderrLogger(e)}}
	c, err := config.Load(configPath(cfg), os.Getenv)
	switch {
	case err == nil:
		t.path = c.Buffer.Path
		t.opt.MaxBytes, t.opt.MaxRecords = int64(c.Buffer.MaxBytes), int64(c.Buffer.MaxRecords)
	case path == "" && (cfg != "" || os.Getenv("TIDEGATE_CONFIG") != ""):
		return t, usageErrorf("reading the config for buffer.path: %v", err)
	default:
		t.path = defaultBufferPath
	}
	if err == nil {
		t.gateway = c.Gateway.ID
	}
	if path != "" && (err != nil || !samePath(path, t.path)) {
		t.path, t.gateway = path, ""
	}
	if _, err := os.Stat(t.path); err != nil {
		return t, fmt.Errorf("no buffer file at %s (give --path FILE or --config FILE): %w", t.path, err)
	}
	return t, nil
}

func samePath(a, b string) bool {
	a, errA := filepath.Abs(a)
	b, errB := filepath.Abs(b)
	return errA == nil && errB == nil && a == b
}

func stderrLogger(e *env) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(e.stderr)
	l.SetLevel(logrus.WarnLevel)
	return l
}

// explain turns the errors a technician meets into what to do.
func explain(path string, err error) error {
	switch {
	case errors.Is(err, buffer.ErrLocked):
		return fmt.Errorf("%s is in use by the running tidegate daemon; stop it first (systemctl stop tidegate) "+
			"or use 'tidegate status' for live figures: %w", path, err)
	case errors.Is(err, buffer.ErrCorrupt):
		return fmt.Errorf("%s is damaged; at its next start the daemon keeps what is readable in a fresh file and moves this one aside "+
			"('tidegate buffer export --path %s' shows what is readable): %w", path, path, err)
	}
	return err
}

// openInspect opens the file for a read-only verb. A damaged file is not
// refused: what the daemon would salvage from it at its next start is
// copied to a temporary file and shown from there (the file itself is
// never modified), with a note on stderr saying so.
func openInspect(e *env, t bufferTarget) (*buffer.Buffer, error) {
	b, err := buffer.Open(t.path, t.opt)
	if !errors.Is(err, buffer.ErrCorrupt) {
		if err != nil {
			return nil, explain(t.path, err)
		}
		return b, nil
	}
	sb, serr := buffer.Salvaged(t.path, "", t.opt)
	if serr != nil {
		return nil, fmt.Errorf("%s is damaged and nothing in it can be read; the daemon moves it aside and starts afresh at its next start: %w", t.path, serr)
	}
	rec := sb.Stats().Recovered
	lost := make([]string, len(rec.LostRanges))
	for i, r := range rec.LostRanges {
		lost[i] = r.String()
	}
	fmt.Fprintf(e.stderr, "%s is damaged (%v); showing what the daemon will salvage at its next start: "+
		"%d records readable, %d lost (seqs %s; the daemon names them in buffer_evicted events, reason salvage). The file was not modified.\n",
		t.path, err, rec.Salvaged, rec.Lost, strings.Join(lost, ","))
	return sb, nil
}

// bufferArgs parses the flags every buffer subcommand shares, plus extra's.
func bufferArgs(e *env, args []string, name string, extra func(fs *flag.FlagSet)) (bufferTarget, error) {
	fs := newFlagSet("buffer "+name, e)
	path, cfg := bufferFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return bufferTarget{}, usageError(err)
	}
	if fs.NArg() > 0 {
		return bufferTarget{}, usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return resolveBuffer(e, *path, *cfg)
}

func openBuffer(e *env, args []string, name string, extra func(fs *flag.FlagSet)) (*buffer.Buffer, bufferTarget, error) {
	t, err := bufferArgs(e, args, name, extra)
	if err != nil {
		return nil, t, err
	}
	b, err := openInspect(e, t)
	return b, t, err
}

func runBufferStats(e *env, args []string) error {
	var asJSON *bool
	b, t, err := openBuffer(e, args, "stats", func(fs *flag.FlagSet) {
		asJSON = fs.Bool("json", false, "print the figures as JSON")
	})
	if err != nil {
		return err
	}
	s := b.Stats()
	s.Path, s.FileBytes = t.path, fileBytes(t.path) // not the temporary copy of a damaged file
	if err := b.Close(); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return printBufferStats(e.stdout, s, time.Now())
}

func printBufferStats(w io.Writer, s buffer.Stats, now time.Time) error {
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
	}
	ranges := make([]string, len(s.EvictedRanges))
	for i, r := range s.EvictedRanges {
		ranges[i] = r.String()
	}
	state := "closed cleanly by the last run"
	if s.Unclean {
		state = "the last run did not close it (crash or power cut); consistency check passed"
	}
	lines := [][2]string{
		{"file", s.Path},
		{"size", fmt.Sprintf("%s on disk, %s of records held, %s of filter journal", mib(s.FileBytes), mib(int64(s.LiveBytes)), mib(int64(s.JournalBytes)))},
		{"held", fmt.Sprintf("%d records (readings %d, billing %d, summaries %d, events %d)", s.Depth, s.Readings, s.Billing, s.Summaries, s.Events)},
		{"sequence", fmt.Sprintf("first held %d, last %d, acknowledged up to %d", s.FirstSeq, s.LastSeq, s.Cursor)},
		{"oldest", when(s.Oldest)},
		{"newest", when(s.Newest)},
		{"totals", fmt.Sprintf("appended %d, acknowledged %d, evicted %d (in %d rounds)", s.Appended, s.Acked, s.Evicted, s.Evictions)},
		{"bounds", fmt.Sprintf("%d records, %s of records, file cap %s; out-of-space hits %d", s.MaxRecords, mib(s.MaxBytes), mib(s.MaxSize), s.FullHits)},
		{"state", state},
	}
	if len(ranges) > 0 {
		lines = append(lines, [2]string{"evicted", strings.Join(ranges, ",")})
	}
	if r := s.Recovered; r != nil {
		what := fmt.Sprintf("%s: %d records salvaged, %d lost", r.Reason, r.Salvaged, r.Lost)
		if r.MovedTo != "" {
			what += "; damaged file moved to " + r.MovedTo
		}
		lines = append(lines, [2]string{"damaged", what})
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-9s %s\n", l[0], l[1]); err != nil {
			return err
		}
	}
	if fb := s.FileBytes; fb > 64<<20 && fb > 4*int64(s.LiveBytes) {
		_, err := fmt.Fprintln(w, "hint      the file is far larger than what it holds: stop the daemon and run 'tidegate buffer compact'")
		return err
	}
	return nil
}

func mib(n int64) string {
	if n < 0 {
		return "none"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func runBufferExport(e *env, args []string) error {
	var from, to *uint64
	var gateway *string
	t, err := bufferArgs(e, args, "export", func(fs *flag.FlagSet) {
		from = fs.Uint64("from", 0, "first sequence number (default: the oldest held)")
		to = fs.Uint64("to", 0, "last sequence number (default: the newest)")
		gateway = fs.String("gateway", "", "gateway id for the records' ids, as the uplink sends them (default: the config's gateway.id when the file is its buffer.path; else no id)")
	})
	if err != nil {
		return err
	}
	if *to != 0 && *to < *from {
		return usageErrorf("--to %d is before --from %d", *to, *from)
	}
	if *gateway != "" {
		t.gateway = *gateway
	}
	b, err := openInspect(e, t)
	if err != nil {
		return err
	}
	err = b.ExportAs(e.stdout, t.gateway, *from, *to)
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}

func runBufferCompact(e *env, args []string) error {
	t, err := bufferArgs(e, args, "compact", nil)
	if err != nil {
		return err
	}
	before, _ := os.Stat(t.path)
	if err := buffer.Compact(t.path); err != nil {
		return explain(t.path, err)
	}
	after, err := os.Stat(t.path)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "compacted %s: %s → %s\n", t.path, mib(before.Size()), mib(after.Size()))
	return err
}

func fileBytes(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
