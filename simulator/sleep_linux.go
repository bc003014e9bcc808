package simulator

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// A sleeper waits on a timerfd in Go's poller: woken by the kernel's
// high-resolution timer. A time.Sleep of a few milliseconds overshoots by up
// to one (the runtime's poller waits in whole milliseconds), and a reply
// that starts or ends that late is a line slower than the one configured:
// every master measured against metersim would pay it.
type sleeper struct{ f *os.File }

func newSleeper() sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return sleeper{}
	}
	return sleeper{os.NewFile(uintptr(fd), "timerfd")}
}

func (s sleeper) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	end := time.Now().Add(d)
	if !s.onTimer(d) {
		time.Sleep(time.Until(end))
	}
}

// onTimer sleeps d on the timerfd; false when it could not, and the
// caller sleeps what is left as it can.
func (s sleeper) onTimer(d time.Duration) bool {
	if s.f == nil {
		return false
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return false
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.TimerfdSettime(int(fd), 0, &spec, nil) }); err != nil || serr != nil {
		return false
	}
	var b [8]byte
	_, err = s.f.Read(b[:])
	return err == nil
}

func (s sleeper) close() {
	if s.f != nil {
		s.f.Close()
	}
}
