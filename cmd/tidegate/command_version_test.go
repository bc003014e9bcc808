package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tidegate/buffer"
)

// version names the commit and the build date however the binary was
// built: with Go's VCS stamp, or with GOFLAGS=-buildvcs=false and the
// Makefile's link flags.
func TestVersionNamesCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not a git checkout")
	}
	head := strings.TrimSpace(string(rev))[:12]
	dir := t.TempDir()
	build := func(name, goflags string, args ...string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", append(append([]string{"build", "-o", out}, args...), "tidegate/cmd/tidegate")...)
		cmd.Env = append(os.Environ(), "GOFLAGS="+goflags)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", goflags, err, b)
		}
		v, err := exec.Command(out, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	date := regexp.MustCompile(`built \d{4}-\d\d-\d\dT`)
	v := build("vcs", "-buildvcs=true")
	if m, _ := exec.Command("go", "version", "-m", filepath.Join(dir, "vcs")).Output(); !strings.Contains(string(m), "vcs.revision") {
		// Go stamps no VCS information in some checkouts (here: git worktrees).
		t.Logf("go build recorded no vcs.revision here; only the link-flag path is checked")
	} else if !strings.Contains(v, "commit "+head) || !date.MatchString(v) {
		t.Errorf("VCS-stamped build: %q, want commit %s and a date", v, head)
	}
	v = build("novcs", "-buildvcs=false", "-ldflags", "-X main.version=v9 -X main.commit="+head+"0000 -X main.date=2026-12-01T20:00:00Z")
	if !strings.HasPrefix(v, "tidegate v9 (commit "+head+", built 2026-12-01T20:00:00Z)") {
		t.Errorf("GOFLAGS=-buildvcs=false with link flags: %q", v)
	}
}

// The packages' scripts read the buffer format a build writes from
// `tidegate version --json` (configs/packages): it must be this build's.
func TestVersionNamesBufferFormat(t *testing.T) {
	code, out, errOut := runCmd(t, "", "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v struct {
		BufferFormat *int `json:"buffer_format"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.BufferFormat == nil || *v.BufferFormat != buffer.Format {
		t.Errorf("version --json: %s (%v), want buffer_format %d", out, err, buffer.Format)
	}
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.Contains(out, fmt.Sprintf("buffer format %d", buffer.Format)) {
		t.Errorf("version: %q, want it to name buffer format %d", out, buffer.Format)
	}
}
