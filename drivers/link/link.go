// Package link is a bus's physical line: a serial port (go.bug.st/serial) or
// a TCP connection to an RS-485 converter, behind one small type that reads
// against a deadline, flushes stale input and keeps the inter-frame silence.
// The protocol drivers (drivers/modbus, drivers/mbus) frame over it.
package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// ErrTimeout: the meter did not answer (completely) within the deadline; a
// transaction that ends with it is an ErrNoAnswer.
var ErrTimeout = Kind("timeout", ErrNoAnswer)

// ErrFailing: the line is open but no longer works (a half-open TCP
// connection, a stream out of step): close it and open it again.
var ErrFailing = errors.New("line failing")

// Config is how to reach a line.
type Config struct {
	Device   string // serial device path, or
	TCP      string // host:port of a converter
	Baud     int
	DataBits int    // default 8
	Parity   string // N, E, O (also none, even, odd)
	StopBits int    // default 1
	RS485    bool   // enable the kernel's RS-485 mode before use
	LockDir  string // lock files (LCK..name) of serial ports; default DefaultLockDir
	// LockFileError is told why the lock file could not be written (a
	// read-only /run/lock, no permission): the port is still held by its
	// flock, but minicom and picocom will not see it. nil: not told.
	LockFileError func(error)
}

// BitsPerChar is start + data + parity + stop bits.
func (c Config) BitsPerChar() int {
	n := 1 + max(c.DataBits, 5) + max(c.StopBits, 1)
	if p := parity(c.Parity); p == serial.EvenParity || p == serial.OddParity {
		n++
	}
	return n
}

// CharTime is the time one character takes on the wire.
func (c Config) CharTime() time.Duration {
	baud := c.Baud
	if baud <= 0 {
		baud = 9600
	}
	return time.Duration(c.BitsPerChar()) * time.Second / time.Duration(baud)
}

func parity(s string) serial.Parity {
	switch strings.ToUpper(s) {
	case "E", "EVEN":
		return serial.EvenParity
	case "O", "ODD":
		return serial.OddParity
	}
	return serial.NoParity
}

// Line is an open bus line. Use it from one goroutine at a time (the bus's).
type Line struct {
	cfg  Config
	port serial.Port
	lock *portLock // the port held exclusively while open
	conn net.Conn
	last time.Time // end of the last traffic seen, for the inter-frame gap
	ps   pollState

	mu     sync.Mutex
	closed bool
}

// Open opens the serial port or dials the converter. A serial port is held
// exclusively until Close: a second opener, in this process or another
// (scan, read, a second daemon; root too), gets a *BusyError (ErrPortBusy)
// naming the holder.
func Open(cfg Config) (*Line, error) {
	if cfg.DataBits == 0 {
		cfg.DataBits = 8
	}
	if cfg.StopBits == 0 {
		cfg.StopBits = 1
	}
	l := &Line{cfg: cfg}
	switch {
	case cfg.TCP != "":
		c, err := net.DialTimeout("tcp", cfg.TCP, 5*time.Second)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", cfg.TCP, err)
		}
		l.conn = c
	case cfg.Device != "":
		lk, err := lockPort(cfg.Device, cfg.LockDir)
		if err != nil {
			return nil, err
		}
		l.lock = lk
		if err := lk.fileError(); err != nil && cfg.LockFileError != nil {
			cfg.LockFileError(err)
		}
		if err := l.openSerial(); err != nil {
			lk.release()
			return nil, err
		}
	default:
		return nil, errors.New("neither device nor tcp given")
	}
	// A serial port is read through the lock's descriptor in Go's poller
	// (poll_linux.go); writes, drain, flush and the mode stay go.bug.st's.
	tty := -1
	if l.lock != nil {
		tty = l.lock.reader()
	}
	l.initPoll(tty)
	return l, nil
}

func (l *Line) openSerial() error {
	cfg := l.cfg
	if cfg.RS485 {
		if err := enableRS485(cfg.Device); err != nil {
			return fmt.Errorf("rs485 on %s: %w", cfg.Device, err)
		}
	}
	stop := serial.OneStopBit
	if cfg.StopBits == 2 {
		stop = serial.TwoStopBits
	}
	p, err := serial.Open(cfg.Device, &serial.Mode{BaudRate: cfg.Baud, DataBits: cfg.DataBits, Parity: parity(cfg.Parity), StopBits: stop})
	if err != nil {
		var pe *serial.PortError
		if errors.As(err, &pe) && pe.Code() == serial.PortBusy {
			return &BusyError{Device: cfg.Device} // held by a program that keeps no lock
		}
		return fmt.Errorf("open %s: %w", cfg.Device, err)
	}
	l.port = p
	return nil
}

// Config returns the line's configuration.
func (l *Line) Config() Config { return l.cfg }

// Close closes the line; a pending Read returns.
func (l *Line) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.closePoll()
	if l.port != nil {
		err := l.port.Close()
		l.lock.release()
		return err
	}
	return l.conn.Close()
}

// WaitGap sleeps until gap has passed since the last traffic, so every frame
// starts after the silence the protocol demands, and not much later: on
// Linux a timerfd ends it to within the kernel's wake-up latency.
func (l *Line) WaitGap(gap time.Duration) {
	if d := time.Until(l.last.Add(gap)); d > 0 && !l.sleepExact(d) {
		time.Sleep(d)
	}
}

// Flush discards whatever is waiting in the input: a late answer to an
// earlier request would otherwise be taken for the answer to the next one.
// It returns how many stray bytes it dropped (TCP) or -1 where the kernel
// drops them uncounted (serial). It never waits: on TCP it reads what the
// socket already holds and stops at the first empty read.
func (l *Line) Flush() (int, error) {
	if l.port != nil {
		return -1, l.port.ResetInputBuffer()
	}
	n := 0
	buf := make([]byte, 256)
	start := time.Now()
	var sample []byte
	for {
		k, err := l.ReadReady(buf)
		n += k
		if len(sample) < sampleLen {
			sample = append(sample, buf[:min(k, sampleLen-len(sample))]...)
		}
		if k == 0 || err != nil {
			return n, err
		}
		if n > maxFlush {
			// The line streams faster than it is read: no request can be
			// heard on it.
			return n, &NoiseError{Bytes: n, Over: max(time.Since(start), time.Microsecond), Sample: sample, After: "the flush before a request", Capped: true}
		}
	}
}

// maxFlush is the most Flush drops before calling the line a stream: more
// than a converter's buffer of late answers.
const maxFlush = 16 << 10

// ReadReady reads what a TCP line has already received, without waiting:
// (0, nil) when nothing is there. A serial line reads nothing (its input is
// flushed whole by Flush).
func (l *Line) ReadReady(buf []byte) (int, error) {
	if l.conn == nil {
		return 0, nil
	}
	return l.readNow(buf)
}

// readNow reads what the line holds now, without waiting.
func (l *Line) readNow(buf []byte) (int, error) {
	if l.polled() {
		n, err := l.readTTY(buf)
		if n > 0 {
			l.last = time.Now()
		}
		return n, err
	}
	if l.conn == nil {
		return 0, nil
	}
	sc, ok := l.conn.(syscall.Conn)
	if !ok {
		// Not a socket (a pipe in tests): a read with a deadline in the
		// past returns at once, so give it the shortest one that reads.
		_ = l.conn.SetReadDeadline(time.Now().Add(50 * time.Microsecond))
		k, err := l.conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = nil
		}
		return k, err
	}
	// An expired deadline of the last read would fail this one at once.
	_ = l.conn.SetReadDeadline(time.Time{})
	return l.rawRead(sc, buf)
}

func (l *Line) rawRead(sc syscall.Conn, buf []byte) (int, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var k int
	var rerr error
	// A callback that returns true is called once and never parks on the
	// poller: a non-blocking read of the socket.
	if err := rc.Read(func(fd uintptr) bool { k, rerr = readFD(fd, buf); return true }); err != nil {
		return 0, err
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case k == 0 && len(buf) > 0:
		return 0, io.EOF
	}
	if k > 0 {
		l.last = time.Now()
	}
	return k, nil
}

// Write sends a frame and waits until it has left the UART; on TCP it
// waits at most writeLimit for the converter to take it.
func (l *Line) Write(b []byte) error {
	return l.WriteUntil(context.Background(), b, time.Time{})
}

// writeLimit bounds a converter write that has no earlier deadline: the
// socket buffers take a frame at once unless the converter stopped reading.
const writeLimit = 5 * time.Second

// WriteUntil is Write within a transaction: on TCP the write ends by the
// earliest of deadline (the transaction's budget, Budget.Deadline; zero:
// none), ctx's deadline and writeLimit, and at once when ctx is cancelled,
// so a converter that stopped reading cannot hold the bus past the
// request. A write cut short leaves the stream out of step (part of a
// frame may have gone): it is ErrFailing, and also ErrNotSent when not a
// byte went. A context already ended sends nothing (ErrNotSent).
func (l *Line) WriteUntil(ctx context.Context, b []byte, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return NotSent(err)
	}
	if l.port != nil {
		err := l.writeSerial(b)
		l.last = time.Now()
		return err
	}
	limit := time.Now().Add(writeLimit)
	if !deadline.IsZero() && deadline.Before(limit) {
		limit = deadline
	}
	if cd, ok := ctx.Deadline(); ok && cd.Before(limit) {
		limit = cd
	}
	_ = l.conn.SetWriteDeadline(limit)
	// A cancellation moves the deadline to the past, which wakes the
	// write; once started it is waited for, so it cannot land on the
	// next write's deadline.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = l.conn.SetWriteDeadline(time.Unix(1, 0))
	})
	n, err := l.conn.Write(b)
	if !stop() {
		<-fired
	}
	l.last = time.Now()
	if err == nil {
		return nil
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	cause := ctx.Err()
	if cd, ok := ctx.Deadline(); cause == nil && ok && !time.Now().Before(cd) {
		cause = context.DeadlineExceeded
	}
	if cause == nil {
		cause = err // the deadline: the converter did not take the frame in time
	}
	if n == 0 {
		return fmt.Errorf("%w: %w: %w", ErrFailing, ErrNotSent, cause)
	}
	return fmt.Errorf("%w: write cut short after %d of %d bytes: %w", ErrFailing, n, len(b), cause)
}

// writeSerial writes all of b and waits for the UART to send it. Both calls
// are retried on EINTR: go.bug.st/serial passes it through, the kernel's
// tcdrain returns it for any signal that arrives while it waits (SA_RESTART
// does not apply there), and the Go runtime signals its own threads for
// preemption all the time — the busier the machine, the more often. Without
// the retry a scan stopped early with "write: interrupted system call".
func (l *Line) writeSerial(b []byte) error {
	for len(b) > 0 {
		n, err := l.port.Write(b)
		b = b[max(n, 0):]
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return err
		}
		if n <= 0 && err == nil {
			return io.ErrShortWrite
		}
	}
	for {
		err := l.port.Drain()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// ReadSome reads what arrives before deadline: (0, ErrTimeout) when nothing
// did.
func (l *Line) ReadSome(buf []byte, deadline time.Time) (int, error) {
	return l.ReadMin(buf, 1, deadline)
}

// ReadMin is ReadSome that wakes once min bytes have arrived (at most 255),
// so a caller that knows how much is still to come is woken once for it,
// when its last byte is in, rather than for every character; what came
// short of min by the deadline is returned then. l.last is when the read
// returned: with the threshold that is the last byte's arrival, give or
// take the wake-up latency, never earlier.
func (l *Line) ReadMin(buf []byte, min int, deadline time.Time) (int, error) {
	left := time.Until(deadline)
	if left <= 0 {
		return 0, ErrTimeout
	}
	l.setMin(min)
	var n int
	var err error
	switch {
	case l.polled():
		n, err = l.readPolled(buf, min, deadline)
	case l.port != nil:
		// go.bug.st/serial reports a timeout as (0, nil) and its timeout
		// covers the whole call, so the deadline is turned into a fresh
		// timeout each time.
		if err = l.port.SetReadTimeout(left); err != nil {
			return 0, err
		}
		n, err = l.port.Read(buf)
		if n == 0 && err == nil {
			err = ErrTimeout
		}
	default:
		_ = l.conn.SetReadDeadline(deadline)
		n, err = l.conn.Read(buf)
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() {
			err = ErrTimeout
		}
		if n > 0 {
			err = nil
		}
	}
	if n == 0 && min > 1 && errors.Is(err, ErrTimeout) {
		// Fewer than min came: they are the caller's to judge.
		if k, rerr := l.readNow(buf); k > 0 || rerr != nil {
			n, err = k, rerr
		}
	}
	if n > 0 {
		l.last = time.Now()
	}
	if err != nil && !errors.Is(err, ErrTimeout) && errors.Is(err, os.ErrClosed) {
		return n, fmt.Errorf("line closed: %w", err)
	}
	return n, err
}
