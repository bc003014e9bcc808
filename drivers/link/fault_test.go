package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClassify: the one classification every master and the scheduler use.
func TestClassify(t *testing.T) {
	noAnswer := Kind("proto: no answer", ErrNoAnswer)
	for _, tc := range []struct {
		err  error
		want Fault
	}{
		{nil, FaultNone},
		{io.EOF, FaultLine},
		{fmt.Errorf("read: %w", os.ErrClosed), FaultLine},
		{syscall.EIO, FaultLine},
		{fmt.Errorf("x: %w", ErrFailing), FaultLine},
		{&NoiseError{Bytes: 600}, FaultLine},
		{context.Canceled, FaultStopped},
		{NotSent(context.DeadlineExceeded), FaultStopped},
		{fmt.Errorf("meter m: %w", noAnswer), FaultMeter},
		{fmt.Errorf("%w: %w", noAnswer, context.DeadlineExceeded), FaultStopped},
		{errors.New("garbled"), FaultMeter},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
	if !errors.Is(fmt.Errorf("w: %w", noAnswer), ErrNoAnswer) || !errors.Is(fmt.Errorf("w: %w", ErrTimeout), ErrNoAnswer) || errors.Is(noAnswer, ErrNotSent) {
		t.Fatal("a protocol's timeout is not an ErrNoAnswer")
	}
}

// TestBudget: the byte cap and the deadline end a transaction; a line
// still talking at the deadline is noise, one that fell quiet is not, and
// a deadline that is the context's is never noise.
func TestBudget(t *testing.T) {
	b := NewBudget(context.Background(), time.Hour, 10, time.Second, "request 01")
	if err := b.Count(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	err := b.Count([]byte{0xA5, 0x5A})
	var ne *NoiseError
	if !errors.As(err, &ne) || !errors.Is(err, ErrLineNoise) || !ne.Capped || ne.Bytes != 12 || ne.After != "request 01" || len(ne.Sample) != 12 ||
		!strings.Contains(err.Error(), "00 A5 5A") {
		t.Fatalf("past the cap: %v", err)
	}
	if over, _ := b.Over(); over {
		t.Fatal("over an hour early")
	}

	b = NewBudget(context.Background(), 0, 1<<20, time.Hour, "r")
	_ = b.Count([]byte{1})
	if over, noise := b.Over(); !over || !errors.Is(noise, ErrLineNoise) {
		t.Fatalf("still talking at the deadline: %v %v", over, noise)
	}
	b = NewBudget(context.Background(), 0, 1<<20, 0, "r")
	_ = b.Count([]byte{1})
	if over, noise := b.Over(); !over || noise != nil {
		t.Fatalf("quiet at the deadline: %v %v", over, noise)
	}
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	b = NewBudget(ctx, time.Hour, 1<<20, time.Hour, "r")
	_ = b.Count([]byte{1})
	if d := b.Until(time.Now().Add(time.Minute)); time.Until(d) > 0 {
		t.Fatal("the context's deadline is not the budget's")
	}
	if over, noise := b.Over(); !over || noise != nil {
		t.Fatalf("at the context's deadline: %v %v", over, noise)
	}
}
