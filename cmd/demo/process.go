package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a child the demo started and must stop.
type process struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan error
	done    chan struct{}
	err     error
}

func startProcess(bin string, args []string, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C on the terminal reaches only the demo,
	// which then stops its children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, logPath: logPath, exited: make(chan error, 1), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
		p.exited <- p.err
	}()
	return p, nil
}

// terminate sends SIGTERM and waits; after the grace period it kills.
func (p *process) terminate(grace time.Duration) (int, error) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
			return -1, fmt.Errorf("no exit within %s after SIGTERM; killed", grace)
		}
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, p.err
}

func (p *process) printLogTail(w io.Writer, n int) error {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	_, err = fmt.Fprintln(w, "  "+strings.Join(lines, "\n  "))
	return err
}
