package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a bar with an estimate of the time left. On a terminal it
// redraws one line; elsewhere (logs, tests) it prints a line per 10 %.
type progress struct {
	w        io.Writer
	tty      bool
	label    string
	start    time.Time
	now      func() time.Time
	lastStep int
	drawn    bool
}

func newProgress(w io.Writer, tty bool, label string) *progress {
	return &progress{w: w, tty: tty, label: label, start: time.Now(), now: time.Now, lastStep: -1}
}

// update reports done of total probes and how many meters were found so far.
func (p *progress) update(done, total, found int) {
	if total <= 0 {
		return
	}
	if done > total {
		done = total
	}
	frac := float64(done) / float64(total)
	elapsed := p.now().Sub(p.start)
	eta := "?"
	if done > 0 {
		left := time.Duration(float64(elapsed) / frac * (1 - frac))
		eta = left.Round(time.Second).String()
	}
	const width = 30
	bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
	line := fmt.Sprintf("%s [%s] %3.0f%% %d/%d  found %d  left %s", p.label, bar, 100*frac, done, total, found, eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drawn = true
		return
	}
	if step := int(frac * 10); step != p.lastStep {
		p.lastStep = step
		fmt.Fprintln(p.w, line)
	}
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
