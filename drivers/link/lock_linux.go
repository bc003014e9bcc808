package link

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// portLock is a held serial port: an flock on the device (which the kernel
// drops when the process dies, and which binds root too, unlike TIOCEXCL)
// and the lock file of the UUCP/FHS convention with our PID, for the
// programs that honour only that.
//
// The descriptor is a raw one, not an *os.File: Go's poller would register
// it edge-triggered for input and output, and since a tty is always
// writable, every character that arrives would wake the runtime with an
// EPOLLOUT event nobody waits for (37 a Modbus poll). The line reads the
// port through it, from an epoll of its own that watches input only
// (poll_linux.go).
type portLock struct {
	fd      int
	file    string // the lock file we wrote, "" if none
	fileErr error  // why there is none
}

// lockPort takes the port or says who holds it. dir is the lock-file
// directory ("" = DefaultLockDir); where it cannot be written (not root, no
// /run/lock, read-only under systemd) the flock alone guards the port and
// fileError says why.
func lockPort(dev, dir string) (*portLock, error) {
	if dir == "" {
		dir = DefaultLockDir
	}
	lockFile := filepath.Join(dir, "LCK.."+lockName(dev))
	fd, err := unix.Open(dev, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.EBUSY) { // TIOCEXCL of another opener
			return nil, busy(dev, lockFile)
		}
		return nil, fmt.Errorf("open %s: %w", dev, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, busy(dev, lockFile)
		}
		return nil, fmt.Errorf("flock %s: %w", dev, err)
	}
	l := &portLock{fd: fd}
	switch err := writeLockFile(lockFile, dev); {
	case err == nil:
		l.file = lockFile
	case errors.Is(err, ErrPortBusy):
		unix.Close(fd)
		var be *BusyError
		if errors.As(err, &be) {
			be.Device = dev
		}
		return nil, err
	default:
		// The directory is not ours to write; the flock holds.
		l.fileErr = err
	}
	return l, nil
}

func (l *portLock) fileError() error { return l.fileErr }

// reader is the port's descriptor for the line's reads: non-blocking, in
// no poller.
func (l *portLock) reader() int { return l.fd }

func (l *portLock) release() {
	if l == nil {
		return
	}
	if l.file != "" {
		if pid, _ := readLockPID(l.file); pid == os.Getpid() {
			os.Remove(l.file)
		}
	}
	unix.Close(l.fd)
}

// lockName is the device's name under /dev with '/' as '_' (pts/3 ->
// pts_3), as the lock-file convention has it.
func lockName(dev string) string {
	if r, err := filepath.Rel("/dev", filepath.Clean(dev)); err == nil && !strings.HasPrefix(r, "..") {
		return strings.ReplaceAll(r, "/", "_")
	}
	return filepath.Base(dev)
}

// writeLockFile creates the lock file with our PID (ten digits,
// right-aligned, and a newline: the HDB UUCP form). A file whose PID is
// dead is stale and taken over; a live one is ErrPortBusy.
func writeLockFile(name, dev string) error {
	for try := 0; try < 3; try++ {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, err = fmt.Fprintf(f, "%10d\n", os.Getpid())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(name)
			}
			return err
		}
		if !errors.Is(err, os.ErrExist) {
			return err
		}
		pid, _ := readLockPID(name)
		if pid > 0 && pid != os.Getpid() && alive(pid) && !closedBy(pid, dev) {
			return &BusyError{PID: pid, Name: procName(pid)}
		}
		// Stale (its process is gone, or no longer has the device open),
		// unreadable, or ours from a line we failed to close: we hold the
		// flock, so it is ours to replace.
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return fmt.Errorf("lock file %s keeps reappearing", name)
}

func readLockPID(name string) (int, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// closedBy tells whether we can see that process pid no longer has dev
// open (a PID reused, or a holder that leaked its lock file). Where its
// descriptors cannot be read it is taken to hold the device.
func closedBy(pid int, dev string) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(dev)
	if err != nil {
		want = dev
	}
	for _, e := range ents {
		if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && t == want {
			return false
		}
	}
	return true
}

func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// busy describes the holder of a port whose flock we could not take.
func busy(dev, lockFile string) error {
	e := &BusyError{Device: dev}
	if pid, err := readLockPID(lockFile); err == nil && pid > 0 && alive(pid) {
		e.PID, e.Name = pid, procName(pid)
	}
	return e
}
