//go:build linux

package link

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// newPty opens a real pseudo-terminal pair and returns the slave's path,
// the device a Line opens.
func newPty(t *testing.T) string {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("/dev/pts/%d", n)
}

// TestPortLockedInProcess: a second Open of a port, in the same process (a
// second bus on the same device), is refused and names the holder; after
// Close the port opens again and the lock file is gone.
func TestPortLockedInProcess(t *testing.T) {
	dev, dir := newPty(t), t.TempDir()
	cfg := Config{Device: dev, Baud: 9600, LockDir: dir}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lockFile := filepath.Join(dir, "LCK.."+lockName(dev))
	if pid, err := readLockPID(lockFile); err != nil || pid != os.Getpid() {
		t.Fatalf("lock file %s: pid %d %v, want ours (%d)", lockFile, pid, err, os.Getpid())
	}
	_, err = Open(cfg)
	if !errors.Is(err, ErrPortBusy) {
		t.Fatalf("second open: %v, want ErrPortBusy", err)
	}
	want := fmt.Sprintf("port %s is in use by %s (pid %d)", dev, procName(os.Getpid()), os.Getpid())
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	l.Close()
	if _, err := os.Stat(lockFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after Close: %v", err)
	}
	l2, err := Open(cfg)
	if err != nil {
		t.Fatalf("open after Close: %v", err)
	}
	l2.Close()
}

// TestPortLockedAcrossProcesses: a child process holds the port; our Open
// is refused naming the child's PID. SIGKILL the child: the kernel drops
// its flock, its lock file stays behind with a dead PID, and our Open takes
// the port over.
func TestPortLockedAcrossProcesses(t *testing.T) {
	if os.Getenv("LINK_LOCK_CHILD") != "" {
		return // the child's side is TestMain's
	}
	dev, dir := newPty(t), t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LINK_LOCK_CHILD="+dev, "LINK_LOCK_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("child: %q %v", line, err)
	}
	cfg := Config{Device: dev, Baud: 9600, LockDir: dir}
	_, err = Open(cfg)
	var be *BusyError
	if !errors.Is(err, ErrPortBusy) || !errors.As(err, &be) || be.PID != cmd.Process.Pid {
		t.Fatalf("open while the child holds it: %v, want busy by pid %d", err, cmd.Process.Pid)
	}
	if !strings.Contains(err.Error(), "(pid "+strconv.Itoa(cmd.Process.Pid)+")") {
		t.Errorf("message %q does not name the holder", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	lockFile := filepath.Join(dir, "LCK.."+lockName(dev))
	if pid, _ := readLockPID(lockFile); pid != cmd.Process.Pid {
		t.Fatalf("the killed child's lock file should remain (stale), has pid %d", pid)
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatalf("open after the holder died: %v", err)
	}
	defer l.Close()
	if pid, _ := readLockPID(lockFile); pid != os.Getpid() {
		t.Errorf("stale lock file not taken over: pid %d", pid)
	}
}

// TestStaleLockFileOfOtherProgram: a lock file left by a program that died
// (its PID no longer runs), or whose PID now belongs to a process without
// the device open, is taken over; one of a live process that has the port
// open without an flock (as minicom does) is honoured.
func TestStaleLockFileOfOtherProgram(t *testing.T) {
	dev, dir := newPty(t), t.TempDir()
	lockFile := filepath.Join(dir, "LCK.."+lockName(dev))
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("no 'true' to get a dead pid: %v", err)
	}
	for _, pid := range []int{dead.Process.Pid, os.Getppid()} {
		os.WriteFile(lockFile, []byte(fmt.Sprintf("%10d\n", pid)), 0o644)
		l, err := Open(Config{Device: dev, LockDir: dir})
		if err != nil {
			t.Fatalf("stale lock file (pid %d) not taken over: %v", pid, err)
		}
		l.Close()
	}

	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("sleep", "60")
	holder.Stdin = f // the "terminal program" has the port open
	if err := holder.Start(); err != nil {
		t.Skipf("no sleep: %v", err)
	}
	f.Close()
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	os.WriteFile(lockFile, []byte(fmt.Sprintf("%10d\n", holder.Process.Pid)), 0o644)
	_, err = Open(Config{Device: dev, LockDir: dir})
	var be *BusyError
	if !errors.As(err, &be) || be.PID != holder.Process.Pid || be.Name != "sleep" {
		t.Fatalf("lock file of a live holder: %v, want busy by sleep (pid %d)", err, holder.Process.Pid)
	}
}

func TestMain(m *testing.M) {
	if dev := os.Getenv("LINK_LOCK_CHILD"); dev != "" {
		l, err := Open(Config{Device: dev, Baud: 9600, LockDir: os.Getenv("LINK_LOCK_DIR")})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		_ = l
		select {} // held until killed
	}
	os.Exit(m.Run())
}

// TestLockFileErrorTold: a lock directory the process cannot write (here:
// one that does not exist, which binds root too) still leaves the port held
// by its flock, and the reason reaches LockFileError instead of vanishing.
func TestLockFileErrorTold(t *testing.T) {
	dev := newPty(t)
	var told []error
	cfg := Config{Device: dev, Baud: 9600, LockDir: filepath.Join(t.TempDir(), "missing"),
		LockFileError: func(err error) { told = append(told, err) }}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if len(told) != 1 || !errors.Is(told[0], os.ErrNotExist) {
		t.Fatalf("LockFileError got %v, want one not-exist error", told)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrPortBusy) {
		t.Errorf("second open without a lock file: %v, want ErrPortBusy (the flock)", err)
	}
}
