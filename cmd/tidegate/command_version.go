package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"tidegate/buffer"
)

// Set at link time by the Makefile (-X main.version=... -X main.commit=...
// -X main.date=...), for builds where Go records no VCS information
// (GOFLAGS=-buildvcs=false, a source tarball, go run).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo is what `tidegate version` prints: the commit and its time from
// the Go build's VCS stamp where there is one, else from the link flags.
type buildInfo struct {
	Version, Commit, Date string
	Modified              bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

func (b buildInfo) String() string {
	c := b.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if c == "" {
		c = "unknown"
	}
	if b.Modified {
		c += "+dirty"
	}
	d := b.Date
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("tidegate %s (commit %s, built %s) %s/%s %s, buffer format %d", b.Version, c, d, runtime.GOOS, runtime.GOARCH, runtime.Version(), buffer.Format)
}

// short is the version with the commit, as the daemon reports it in its
// status and birth message.
func (b buildInfo) short() string {
	if len(b.Commit) >= 12 {
		return b.Version + "-" + b.Commit[:12]
	}
	return b.Version
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("version", e)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	b := readBuildInfo()
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"version": b.Version, "commit": b.Commit, "date": b.Date,
			"modified": b.Modified, "os": runtime.GOOS, "arch": runtime.GOARCH, "go": runtime.Version(), "buffer_format": buffer.Format})
	}
	_, err := fmt.Fprintln(e.stdout, b)
	return err
}
