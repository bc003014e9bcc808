package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, false, "scan")
	clock := p.start
	p.now = func() time.Time { return clock }
	for i := 0; i <= 250; i += 25 {
		clock = p.start.Add(time.Duration(i) * 100 * time.Millisecond)
		p.update(i, 250, i/100)
	}
	p.finish()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 11 {
		t.Fatalf("want one line per 10%% (11), got %d:\n%s", len(lines), b.String())
	}
	// Linear progress: at 50 % after 12.5 s, 12.5 s are left.
	if !strings.Contains(lines[5], " 50% 125/250  found 1  left 12s") && !strings.Contains(lines[5], "left 13s") {
		t.Errorf("half-way line: %q", lines[5])
	}
	if !strings.Contains(lines[10], "100% 250/250  found 2  left 0s") || !strings.Contains(lines[10], strings.Repeat("#", 30)) {
		t.Errorf("last line: %q", lines[10])
	}
	var tty bytes.Buffer
	pt := newProgress(&tty, true, "scan")
	pt.update(1, 2, 0)
	pt.finish()
	if !strings.HasPrefix(tty.String(), "\rscan [") || !strings.HasSuffix(tty.String(), "\x1b[K\n") {
		t.Errorf("terminal bar: %q", tty.String())
	}
}
