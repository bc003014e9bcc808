package link

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sampleLen is how many bytes of noise a NoiseError keeps to show.
const sampleLen = 16

// NoiseError says a line kept talking past a transaction's budget: how much
// came, over how long, what it looked like and which request it followed.
type NoiseError struct {
	Bytes  int
	Over   time.Duration
	Sample []byte // the first bytes that came, at most 16
	After  string // the request it followed, as the master names it
	Capped bool   // the byte cap was hit (rather than the deadline)
}

// Rate is the noise's bytes per second.
func (e *NoiseError) Rate() float64 {
	if e.Over <= 0 {
		return 0
	}
	return float64(e.Bytes) / e.Over.Seconds()
}

// Hex is the sample as hex bytes.
func (e *NoiseError) Hex() string {
	var sb strings.Builder
	for i, c := range e.Sample {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}

func (e *NoiseError) Error() string {
	return fmt.Sprintf("line noise: %d bytes in %s (%.0f B/s) after %s, the line does not go quiet: %s",
		e.Bytes, e.Over.Round(time.Millisecond), e.Rate(), e.After, e.Hex())
}

func (e *NoiseError) Is(target error) bool { return target == ErrLineNoise }

// Budget bounds one transaction: an absolute deadline (the longest legal
// answer's wire time, the turnaround and a margin, cut short by the
// context's own deadline) and a byte cap (the longest legal answer, echoes
// and a margin). A master passes every read through it: Until bounds the
// read's deadline, Count counts what came and says when the cap is passed.
// Whatever the line does, the transaction ends by its deadline having read
// at most cap bytes (plus one read), and a line that was still talking at
// the end is reported as noise rather than as the meter's fault.
type Budget struct {
	start, deadline time.Time
	ctxDeadline     bool // the deadline is the context's, not the budget's
	cap, n          int
	quiet           time.Duration
	last            time.Time
	sample          []byte
	after           string
}

// NewBudget starts a transaction's budget now: it lasts at most d and reads
// at most cap bytes; the line counts as quiet once no byte came for quiet.
// after names the request for the noise report.
func NewBudget(ctx context.Context, d time.Duration, cap int, quiet time.Duration, after string) *Budget {
	return NewBudgetUntil(ctx, time.Now().Add(d), cap, quiet, after)
}

// NewBudgetUntil is NewBudget with an absolute deadline.
func NewBudgetUntil(ctx context.Context, deadline time.Time, cap int, quiet time.Duration, after string) *Budget {
	b := &Budget{start: time.Now(), deadline: deadline, cap: cap, quiet: quiet, after: after}
	if cd, ok := ctx.Deadline(); ok && cd.Before(b.deadline) {
		b.deadline, b.ctxDeadline = cd, true
	}
	return b
}

// Until is d, or the budget's deadline when that comes first.
func (b *Budget) Until(d time.Time) time.Time {
	if b.deadline.Before(d) {
		return b.deadline
	}
	return d
}

// Deadline is the budget's absolute end.
func (b *Budget) Deadline() time.Time { return b.deadline }

// Count records p as read; past the cap it returns a *NoiseError.
func (b *Budget) Count(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	b.n += len(p)
	b.last = time.Now()
	if k := min(sampleLen-len(b.sample), len(p)); k > 0 {
		b.sample = append(b.sample, p[:k]...)
	}
	if b.n > b.cap {
		return b.noise(true)
	}
	return nil
}

// Bytes is how many bytes the transaction has read.
func (b *Budget) Bytes() int { return b.n }

// Over reports whether the deadline has passed; with noise, whether the
// line was still talking then (a byte within the quiet time before it):
// that is the line's fault, a *NoiseError. A deadline that is the
// context's is never noise: the caller stopped the transaction.
func (b *Budget) Over() (over bool, noise error) {
	now := time.Now()
	if now.Before(b.deadline) {
		return false, nil
	}
	if !b.ctxDeadline && b.n > 0 && now.Sub(b.last) < b.quiet {
		return true, b.noise(false)
	}
	return true, nil
}

func (b *Budget) noise(capped bool) *NoiseError {
	return &NoiseError{Bytes: b.n, Over: max(time.Since(b.start), time.Millisecond), Sample: append([]byte(nil), b.sample...), After: b.after, Capped: capped}
}

// SomeReader is what AfterAnswer needs of a line.
type SomeReader interface {
	ReadSome(buf []byte, deadline time.Time) (int, error)
}

// AfterAnswer checks that the line goes quiet after a complete, valid
// answer of frame bytes. A transmitter that sticks repeats its answer back
// to back, so every poll of a meter alone on its bus "succeeds" with a
// repeat; what gives it away is that bytes go on arriving where the
// protocol demands silence. It waits at most gap for a byte: that silence
// is what the next request keeps anyway, so a quiet line costs nothing. A
// few bytes and then silence (a radio module's RSSI, a driver's turn-off
// glitch) are stray and returned; a stream of max(frame, 16) bytes without
// a gap is a *NoiseError. It reads within the budget and counts into it.
func AfterAnswer(r SomeReader, tx *Budget, frame int, gap time.Duration) (stray int, err error) {
	limit := max(frame, 16)
	var buf [64]byte
	for stray < limit {
		n, rerr := r.ReadSome(buf[:], tx.Until(time.Now().Add(gap)))
		if n > 0 {
			stray += n
			if cerr := tx.Count(buf[:n]); cerr != nil {
				return stray, cerr
			}
		}
		if errors.Is(rerr, ErrTimeout) || rerr == nil && n == 0 {
			return stray, nil // quiet again (or the budget is spent)
		}
		if rerr != nil {
			return stray, rerr
		}
	}
	return stray, tx.noise(false)
}
