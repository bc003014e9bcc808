package link

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/creack/pty"
)

// A converter that accepts the connection and stops reading: once the
// socket buffers are full a write blocks. It must end by the transaction's
// deadline or its context's, and at once on cancellation, not after a
// fixed 5 s; a write cut short fails the line.
func TestWriteFollowsContextAndBudget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c // kept open, never read
		}
	}()
	l, err := Open(Config{TCP: ln.Addr().String(), Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	defer func() {
		select {
		case c := <-held:
			c.Close()
		default:
		}
	}()
	// Well under writeLimit even on a loaded machine, well over what each
	// case asks for.
	const within = 3 * time.Second

	// The budget's deadline: more than the socket buffers hold, so the
	// write fills them and is cut short.
	big := make([]byte, 32<<20)
	t0 := time.Now()
	err = l.WriteUntil(context.Background(), big, time.Now().Add(200*time.Millisecond))
	if d := time.Since(t0); d > within || !errors.Is(err, ErrFailing) || Classify(err) != FaultLine {
		t.Fatalf("write past the budget: %v after %s, want a line fault within %s", err, d, within)
	}

	// Fill what the kernel still takes (the peer's window opens as the
	// sender's buffer moves over), until not one byte more goes.
	for i := 0; ; i++ {
		if l.WriteUntil(context.Background(), []byte{0}, time.Now().Add(100*time.Millisecond)) != nil {
			break
		}
		if i == 100 {
			t.Fatal("the socket buffers never fill")
		}
		for l.WriteUntil(context.Background(), big[:64<<10], time.Now().Add(100*time.Millisecond)) == nil {
		}
	}

	// Buffers full: a cancelled context ends the write at once, and
	// nothing of the frame went.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	t0 = time.Now()
	err = l.WriteUntil(ctx, []byte("frame"), time.Time{})
	if d := time.Since(t0); d > within || !errors.Is(err, context.Canceled) || !errors.Is(err, ErrFailing) || !errors.Is(err, ErrNotSent) {
		t.Errorf("write cancelled after 200ms: %v after %s, want canceled, failing, not sent within %s", err, d, within)
	}

	// The context's deadline, earlier than the budget's.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	err = l.WriteUntil(ctx, []byte("frame"), time.Now().Add(time.Hour))
	if d := time.Since(t0); d > within || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrFailing) {
		t.Errorf("write past the context's deadline: %v after %s, want deadline exceeded within %s", err, d, within)
	}

	// A context already over sends nothing and blames nobody.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := l.WriteUntil(ctx, []byte("frame"), time.Time{}); !errors.Is(err, ErrNotSent) || Classify(err) != FaultStopped {
		t.Errorf("write with a cancelled context: %v, want not sent", err)
	}
}

// After a complete answer: a couple of stray bytes and then silence (a
// radio module's RSSI, a driver's turn-off glitch) are not noise; a
// stream with no gap (a stuck transmitter) is, over a real pty.
func TestAfterAnswer(t *testing.T) {
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
	gap := 20 * time.Millisecond

	// Nothing after the answer.
	tx := NewBudget(context.Background(), 2*time.Second, 1024, gap, "request r")
	if n, err := AfterAnswer(l, tx, 39, gap); n != 0 || err != nil {
		t.Fatalf("quiet line: %d stray, %v", n, err)
	}
	// Two bytes, then silence.
	if _, err := master.Write([]byte{0xC4, 0x3A}); err != nil {
		t.Fatal(err)
	}
	if n, err := AfterAnswer(l, tx, 39, gap); n != 2 || err != nil {
		t.Fatalf("two trailing bytes: %d stray, %v; want 2, nil", n, err)
	}
	// The answer again and again.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		frame := []byte{1, 3, 2, 0, 0, 0xB8, 0x44}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := master.Write(frame); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	tx = NewBudget(context.Background(), 2*time.Second, 1024, gap, "request r")
	n, err := AfterAnswer(l, tx, 7, gap)
	var ne *NoiseError
	if !errors.As(err, &ne) || n < 16 || ne.After != "request r" {
		t.Fatalf("a repeating answer: %d bytes, %v; want line noise", n, err)
	}
}
