package link

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollState is how a line waits for its bytes and its silences on Linux:
// parked in Go's poller, woken once for what it waits for, with no thread
// held in a syscall meanwhile.
//
// A serial port is read through the lock's raw descriptor (non-blocking),
// watched for input only by an epoll instance of our own, which is itself
// in Go's poller (an epoll fd is pollable). go.bug.st/serial's Read holds a
// thread in select for each call, and every such wait that outlasts 10 ms
// has the runtime's monitor take the P back and then spin at 20 µs for a
// millisecond; the port's descriptor in Go's poller directly would wake the
// runtime for every character (a tty is always writable, and the poller is
// edge-triggered for output too). The tty's VMIN makes input count as
// ready only once the bytes still to come are in.
type pollState struct {
	mu     sync.RWMutex // held (read) around each use of tty; Close takes it to close tty
	tty    int          // the port's descriptor, non-blocking; -1 none (TCP, or not Linux)
	ep     *os.File     // epoll watching tty for input, in Go's poller
	events [1]unix.EpollEvent
	closed bool

	vmin  int           // the wake-up threshold set now; 0 unknown
	noMin bool          // the line takes no threshold (not a tty, not a socket)
	tio   *unix.Termios // the tty's settings, VMIN changed in place
	timer *os.File      // a timerfd for the inter-frame silence; nil if none
}

// initPoll sets the line up for polled reads of tty (-1: none, reads go
// through the serial library or the connection) and exact silences.
func (l *Line) initPoll(tty int) {
	l.ps.tty = -1
	if fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err == nil {
		l.ps.timer = os.NewFile(uintptr(fd), "silence")
	}
	if tty < 0 {
		return
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return
	}
	if unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tty, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tty)}) != nil || unix.SetNonblock(ep, true) != nil {
		unix.Close(ep)
		return
	}
	l.ps.ep = os.NewFile(uintptr(ep), "port-input")
	l.ps.tty = tty
}

// closePoll wakes a pending read or silence and stops every further use of
// the port's descriptor, so the caller may close it.
func (l *Line) closePoll() {
	if l.ps.timer != nil {
		l.ps.timer.Close()
	}
	if l.ps.ep != nil {
		l.ps.ep.Close()
	}
	l.ps.mu.Lock()
	if l.ps.tio != nil && l.ps.tio.Cc[unix.VMIN] != 1 {
		// The next opener of the port may not set VMIN itself (a shell's
		// cat, a naive tool): leave it as go.bug.st/serial set it.
		l.ps.tio.Cc[unix.VMIN] = 1
		_ = unix.IoctlSetTermios(l.ps.tty, unix.TCSETS, l.ps.tio)
	}
	l.ps.closed = true
	l.ps.mu.Unlock()
}

func (l *Line) polled() bool { return l.ps.tty >= 0 }

// readPolled waits until the port has input (as many bytes as the
// threshold says) or the deadline passes, and reads it.
//
// The tty wakes its waiters for every character even below VMIN: the
// runtime's poller thread went back to sleep in the kernel each time, but
// paid a context switch for it, 34 an answer. Bytes cannot come faster than
// the baud rate, so when many are still to come the wait first sleeps
// through all but the last two of them with the port unwatched.
func (l *Line) readPolled(buf []byte, atLeast int, deadline time.Time) (int, error) {
	if need := atLeast - l.inQueue(); need >= 8 {
		d := min(time.Duration(need-2)*l.cfg.CharTime(), time.Until(deadline))
		if l.watch(0) == nil {
			l.sleepExact(d)
			if err := l.watch(unix.EPOLLIN); err != nil {
				return 0, err
			}
		}
	}
	_ = l.ps.ep.SetReadDeadline(deadline)
	rc, err := l.ps.ep.SyscallConn()
	if err != nil {
		return 0, err
	}
	for {
		var werr error
		err := rc.Read(func(fd uintptr) bool {
			n, err := unix.EpollWait(int(fd), l.ps.events[:], 0)
			if err != nil && !errors.Is(err, unix.EINTR) {
				werr = err
			}
			return n > 0 || werr != nil
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return 0, ErrTimeout
		case err != nil:
			return 0, err
		case werr != nil:
			return 0, werr
		}
		n, err := l.readTTY(buf)
		if n > 0 || err != nil {
			return n, err
		}
		// Ready and then empty: a flush came between, or the wake-up
		// was for an earlier threshold. Wait again.
	}
}

// inQueue is how many bytes the port holds now (0 if unknown).
func (l *Line) inQueue() int {
	l.ps.mu.RLock()
	defer l.ps.mu.RUnlock()
	if l.ps.closed {
		return 0
	}
	n, err := unix.IoctlGetInt(l.ps.tty, unix.TIOCINQ)
	if err != nil {
		return 0
	}
	return n
}

// watch sets what the epoll watches the port for: EPOLLIN, or 0 (nothing:
// its characters then wake no one).
func (l *Line) watch(events uint32) error {
	l.ps.mu.RLock()
	defer l.ps.mu.RUnlock()
	if l.ps.closed {
		return os.ErrClosed
	}
	rc, err := l.ps.ep.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cerr = unix.EpollCtl(int(fd), unix.EPOLL_CTL_MOD, l.ps.tty, &unix.EpollEvent{Events: events, Fd: int32(l.ps.tty)})
	}); err != nil {
		return err
	}
	return cerr
}

// readTTY reads what the port holds now: (0, nil) when nothing.
func (l *Line) readTTY(buf []byte) (int, error) {
	l.ps.mu.RLock()
	defer l.ps.mu.RUnlock()
	if l.ps.closed {
		return 0, os.ErrClosed
	}
	for {
		n, err := unix.Read(l.ps.tty, buf)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, nil
		case err != nil:
			return 0, err
		case n == 0 && len(buf) > 0:
			return 0, io.EOF // a hung-up tty reads as end of file
		}
		return n, nil
	}
}

// setMin makes the next read wake only once n bytes are waiting: the tty's
// VMIN (with VTIME 0, poll and epoll report a tty readable only then) or
// the socket's SO_RCVLOWAT. An answer arrives a character at a time (from
// metersim's paced transmit, from a UART with a small FIFO, from a
// converter that sends what its UART has); woken for each one, Go's
// scheduler took most of a poll's CPU. A line that takes no threshold
// wakes per chunk, as before.
func (l *Line) setMin(n int) {
	n = max(1, min(n, 255))
	if n == l.ps.vmin || l.ps.noMin {
		return
	}
	var err error
	switch {
	case l.polled():
		l.ps.mu.RLock()
		if l.ps.closed {
			l.ps.mu.RUnlock()
			return
		}
		if l.ps.tio == nil {
			l.ps.tio, err = unix.IoctlGetTermios(l.ps.tty, unix.TCGETS)
		}
		if err == nil {
			l.ps.tio.Cc[unix.VMIN], l.ps.tio.Cc[unix.VTIME] = uint8(n), 0
			err = unix.IoctlSetTermios(l.ps.tty, unix.TCSETS, l.ps.tio)
		}
		l.ps.mu.RUnlock()
	case l.conn != nil:
		sc, ok := l.conn.(syscall.Conn)
		if !ok {
			err = errors.ErrUnsupported
			break
		}
		var rc syscall.RawConn
		if rc, err = sc.SyscallConn(); err == nil {
			var serr error
			err = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, n) })
			err = errors.Join(err, serr)
		}
	default:
		err = errors.ErrUnsupported
	}
	if err != nil {
		l.ps.noMin = true
		return
	}
	l.ps.vmin = n
}

// sleepExact sleeps d on a timerfd in Go's poller: woken by the kernel's
// high-resolution timer, where a time.Sleep of a few milliseconds
// overshoots by up to one (the runtime's poller waits in whole
// milliseconds). false when there is no timer: the caller sleeps as it can.
func (l *Line) sleepExact(d time.Duration) bool {
	if l.ps.timer == nil {
		return false
	}
	rc, err := l.ps.timer.SyscallConn()
	if err != nil {
		return false
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.TimerfdSettime(int(fd), 0, &spec, nil) }); err != nil || serr != nil {
		return errors.Is(err, os.ErrClosed)
	}
	var b [8]byte
	_, err = l.ps.timer.Read(b[:])
	return err == nil || errors.Is(err, os.ErrClosed)
}
