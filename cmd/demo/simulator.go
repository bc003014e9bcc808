package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// startSimulator runs metersim with --ports and waits for the file that
// names each bus's pty, so tidegate can be pointed at them.
func startSimulator(ctx context.Context, o options, dir string, start time.Time, stderr io.Writer) (*sim, error) {
	s := &sim{ports: map[string]string{}}
	if _, err := os.Stat(o.simConfig); err != nil {
		s.note = "config " + o.simConfig + " not found: no simulated meters"
		return s, nil
	}
	portsFile := filepath.Join(dir, "ports.json")
	p, err := startProcess(filepath.Join(o.bin, "metersim"), []string{"--config", o.simConfig, "--ports", portsFile, "--start", start.Format(time.RFC3339)}, filepath.Join(dir, "metersim.log"))
	if err != nil {
		return nil, err
	}
	s.proc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(portsFile)
		if err == nil {
			var info map[string]struct {
				Device string `json:"device"`
				TCP    string `json:"tcp"`
			}
			if err := json.Unmarshal(data, &info); err != nil {
				return s, fmt.Errorf("%s: %w", portsFile, err)
			}
			for name, b := range info {
				if b.Device != "" {
					s.ports[name] = b.Device
				} else {
					s.ports[name] = b.TCP
				}
			}
			s.note = fmt.Sprintf("%d buses on ptys, %s, simulated time from %s", len(s.ports), o.simConfig, start.Format("15:04"))
			return s, nil
		}
		select {
		case <-p.done:
			s.proc = nil
			_ = p.printLogTail(stderr, 10)
			return s, fmt.Errorf("metersim exited at once")
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("metersim wrote no %s in 10 s", portsFile)
		}
	}
}

func (s *sim) stop() {
	if s.proc != nil {
		_, _ = s.proc.terminate(5 * time.Second)
		s.proc = nil
	}
}
