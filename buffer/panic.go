package buffer

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/sirupsen/logrus"
)

// recovered turns a recovered panic value into an error. It must be called
// from the deferred function that recovered, so that the panicking frames
// are still on the stack.
//
// Two kinds of panic meet a transaction. A damaged file: bbolt's assertions
// on a page that makes no sense, or a fault on a mapped page the disk lost
// (SetPanicOnFault turns SIGBUS/SIGSEGV on an address into a runtime error
// that carries the address). Both are ErrCorrupt, and the file is salvaged.
// Anything else is a bug in our own code (a nil map, an index out of range,
// a nil pointer: a runtime error without an address): ErrPanic, logged
// with its stack, and never a reason to touch the file. The panic is told
// apart by where it was raised and what it carries, not by its text.
func recovered(r any, log logrus.FieldLogger) error {
	if isFault(r) || raisedInBbolt() {
		return fmt.Errorf("%w: %v", ErrCorrupt, r)
	}
	if log != nil {
		log.WithFields(logrus.Fields{"panic": fmt.Sprint(r), "stack": string(debug.Stack())}).
			Error("buffer: panic in a transaction recovered; the transaction was rolled back, the file is untouched (a bug: please report it)")
	}
	return fmt.Errorf("%w: %v", ErrPanic, r)
}

// isFault: a memory fault at an address (a mapped page that cannot be
// read). A nil dereference has no address worth the name (below 4 KiB) and
// is a bug.
func isFault(r any) bool {
	e, ok := r.(interface {
		error
		Addr() uintptr
	})
	if !ok {
		return false
	}
	_, isRuntime := e.(runtime.Error)
	return isRuntime && e.Addr() >= 4096
}

// raisedInBbolt reports whether the frame that raised the panic being
// recovered is in bbolt (its assertions on a damaged page, or a fault it
// met reading one).
func raisedInBbolt() bool {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && strings.HasPrefix(f.Function, "runtime."):
			// sigpanic, panicmem, goPanicIndex...: not the raiser
		case inPanic:
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}
