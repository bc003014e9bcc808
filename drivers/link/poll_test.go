//go:build linux

package link

import (
	"net"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// paced writes b to w a byte at a time, every char, as a UART (or
// metersim) delivers an answer.
func paced(w interface{ Write([]byte) (int, error) }, b []byte, char time.Duration) {
	for i := range b {
		time.Sleep(char)
		w.Write(b[i : i+1])
	}
}

// TestReadMinWakesOnceOnPty: five bytes arriving a millisecond apart are
// read by one ReadMin(5), on a real pty. Before, every byte woke the
// reader (and Go's scheduler with it): five reads.
func TestReadMinWakesOnceOnPty(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	l, err := Open(Config{Device: s.Name(), Baud: 9600, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for round := range 3 {
		go paced(m, []byte{1, 2, 3, 4, 5}, time.Millisecond)
		buf := make([]byte, 64)
		before := time.Now()
		n, err := l.ReadMin(buf, 5, time.Now().Add(10*time.Second))
		if err != nil || n != 5 {
			t.Fatalf("round %d: ReadMin(5) = %d, %v; want all 5 in one read", round, n, err)
		}
		if !l.last.After(before) {
			t.Fatalf("round %d: last traffic %v not after the read began", round, l.last)
		}
	}
	// Fewer than asked for by the deadline: returned then, not lost.
	go paced(m, []byte{9, 9}, time.Millisecond)
	buf := make([]byte, 64)
	n, err := l.ReadMin(buf, 5, time.Now().Add(300*time.Millisecond))
	if n == 1 && err == nil { // the first byte may come alone before the second
		k, _ := l.ReadMin(buf[1:], 4, time.Now().Add(300*time.Millisecond))
		n += k
	}
	if n != 2 {
		t.Fatalf("2 of 5 bytes by the deadline: got %d (%v)", n, err)
	}
	if _, err := l.ReadMin(buf, 5, time.Now().Add(50*time.Millisecond)); err != ErrTimeout {
		t.Fatalf("silent line: %v, want ErrTimeout", err)
	}
	// Closed, the port is left with VMIN 1 for its next opener.
	l.Close()
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Cc[unix.VMIN] != 1 {
		t.Fatalf("VMIN %d after Close, want 1", tio.Cc[unix.VMIN])
	}
}

// TestReadMinOnTCP: the same over a TCP converter (SO_RCVLOWAT).
func TestReadMinOnTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l, err := Open(Config{TCP: ln.Addr().String(), Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		time.Sleep(20 * time.Millisecond) // the reader is most likely parked by then
		paced(c, []byte{1, 2, 3, 4, 5, 6, 7, 8}, time.Millisecond)
	}()
	buf := make([]byte, 64)
	got, reads := 0, 0
	for got < 8 {
		n, err := l.ReadMin(buf, 8-got, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got += n
		reads++
	}
	// One, or a few if this goroutine was held up between reads while bytes
	// came (a read takes what is there); eight without the threshold.
	if reads > 3 {
		t.Fatalf("8 bytes a millisecond apart took %d reads, want at most 3", reads)
	}
}

// TestWaitGapExact: the silence ends on time, not up to a millisecond
// late (time.Sleep's poller waits in whole milliseconds), and never early.
func TestWaitGapExact(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	l, err := Open(Config{Device: s.Name(), Baud: 9600, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	gap := l.Config().CharTime() * 7 / 2
	best := time.Hour
	for range 40 {
		l.last = time.Now()
		l.WaitGap(gap)
		d := time.Since(l.last)
		if d < gap {
			t.Fatalf("silence of %v, want at least %v", d, gap)
		}
		best = min(best, d-gap)
		if best < 200*time.Microsecond {
			return
		}
	}
	t.Fatalf("the best of 40 silences of %v ended %v late", gap, best)
}
