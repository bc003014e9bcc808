package link

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// The kernel ends tcdrain with EINTR when any signal arrives while it waits
// (tty_io.c returns -EINTR itself, so SA_RESTART does not help), and the Go
// runtime signals its threads all the time (SIGURG for preemption; more
// often the busier the machine). A write must not fail for that: this test
// sends SIGURG to the process throughout a run of writes through a real pty.
func TestWriteSurvivesSignals(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	l, err := Open(Config{Device: slave.Name(), Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	go func() { // the meter side: take everything the master writes
		buf := make([]byte, 4096)
		for {
			if _, err := master.Read(buf); err != nil {
				return
			}
		}
	}()
	// The writer stays on one thread and the signals go to that thread, so
	// they arrive while it is inside the kernel.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := syscall.Gettid()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = syscall.Tgkill(os.Getpid(), tid, syscall.SIGURG)
			}
		}
	}()
	frame := make([]byte, 64)
	failed := 0
	var first error
	deadline := time.Now().Add(20 * time.Second)
	n := 0
	for ; n < 30000 && time.Now().Before(deadline); n++ {
		if err := l.Write(frame); err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	close(stop)
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of %d writes failed under signals, first: %v", failed, n, first)
	}
}
