package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrLineNoise: the line did not go quiet within a transaction's budget (a
// babbling device, a stuck transmitter, a converter streaming noise). It is
// the line's fault, not the polled meter's; the error is a *NoiseError.
var ErrLineNoise = errors.New("line noise")

// ErrNotSent: the request's deadline passed (or its context ended) before it
// reached the line, so nothing was written. A caller that must know whether
// a command may have been acted on (a valve) tells this from ErrNoAnswer.
var ErrNotSent = errors.New("not sent: the request's deadline passed before it reached the line")

// ErrNoAnswer: the request was sent and no (complete, valid) answer came.
// Each protocol's timeout error is one (errors.Is).
var ErrNoAnswer = errors.New("sent, no answer")

// Fault is whose fault a failed transaction is.
type Fault uint8

const (
	FaultNone    Fault = iota // no error
	FaultMeter                // this meter: silent, garbled, foreign, refused; retry it, then mark it offline
	FaultLine                 // this line: closed, unplugged, reset, babbling; close and reopen the bus
	FaultStopped              // the caller's context ended; neither the meter's nor the line's
)

func (f Fault) String() string {
	return [...]string{"none", "meter", "line", "stopped"}[f]
}

// Classify is the one classification of transaction errors every master and
// the bus scheduler use: a line fault is the line's own (EOF, closed, EIO,
// reset, a failing connection, noise); a context's end, or a request never
// sent, is a stop; anything else is the polled meter's.
func Classify(err error) Fault {
	switch {
	case err == nil:
		return FaultNone
	case IsLineFault(err):
		return FaultLine
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrNotSent):
		return FaultStopped
	}
	return FaultMeter
}

// IsLineFault reports whether err is the line's own failure.
func IsLineFault(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) ||
		errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ENODEV) || errors.Is(err, ErrFailing) || errors.Is(err, ErrLineNoise))
}

// kindError is a protocol's own sentinel that is also one of link's kinds
// (errors.Is with both), with the protocol's message.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// Kind makes a sentinel error with message msg that is also kind
// (errors.Is(err, kind)): mbus.ErrTimeout is a link.ErrNoAnswer.
func Kind(msg string, kind error) error { return &kindError{msg: msg, kind: kind} }

// NotSent wraps why a request was not sent (its context's error).
func NotSent(cause error) error { return fmt.Errorf("%w: %w", ErrNotSent, cause) }
