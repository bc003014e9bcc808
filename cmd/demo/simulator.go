package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"
)

// sim is the running metersim and where its buses are.
type sim struct {
	proc  *process
	ports map[string]string // tidegate bus name → device path or host:port
	note  string
}

func startSimulator(ctx context.Context, o options, dir string, stderr io.Writer) (*sim, error) {
	s := &sim{ports: map[string]string{}}
	if _, err := os.Stat(o.simConfig); err != nil {
		s.note = "config " + o.simConfig + " not found: no simulated meters"
		return s, nil
	}
	p, err := startProcess(filepath.Join(o.bin, "metersim"), []string{"--config", o.simConfig}, filepath.Join(dir, "metersim.log"))
	if err != nil {
		return nil, err
	}
	s.proc = p
	select {
	case <-p.done:
		s.note = "exited at once (not built yet?); see the log below"
		s.proc = nil
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
	}
	return s, nil
}

func (s *sim) stop() {
	if s.proc != nil {
		_, _ = s.proc.terminate(5 * time.Second)
		s.proc = nil
	}
}
