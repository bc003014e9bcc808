package link

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
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
