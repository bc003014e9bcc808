package buffer

import "errors"

var (
	// ErrLocked means another process (normally the running daemon) holds the
	// buffer file; Open gave up after Options.Timeout instead of waiting forever.
	ErrLocked = errors.New("buffer file is locked by another process")
	// ErrClosed is returned by calls on a Buffer after Close.
	ErrClosed = errors.New("buffer is closed")
	// ErrCorrupt means the file failed its checks at open. Open moves such a
	// file aside and starts afresh unless Options.NoRecover is set.
	ErrCorrupt = errors.New("buffer file is corrupt")
	// ErrNewerFormat means the file was written by a newer tidegate; it is
	// left untouched so that the newer binary can still deliver its records.
	ErrNewerFormat = errors.New("buffer file has a newer format")
	// ErrFull means a commit failed for lack of space (disk full or
	// Options.MaxSize) even after evicting records; the records were not stored.
	ErrFull = errors.New("buffer is full")
	// ErrUnknownSeq is returned when acknowledging a sequence never assigned.
	ErrUnknownSeq = errors.New("sequence number not assigned yet")
	// ErrInvalidRecord is returned for a record Append cannot store (unknown
	// kind, missing payload, too large).
	ErrInvalidRecord = errors.New("invalid record")
	// ErrDecode is returned for stored bytes that do not decode as a record.
	ErrDecode = errors.New("cannot decode record")
	// ErrPanic means a panic in the buffer's own code (a bug) was recovered
	// inside a transaction: the transaction was rolled back, the file is
	// untouched and stays in use, and the stack was logged. It is never
	// taken for corruption. The next call may succeed.
	ErrPanic = errors.New("buffer: internal error (panic recovered)")
	// ErrIO wraps a failure of the disk under a commit that is neither a
	// full disk nor a damaged file (EIO from write or fsync): the
	// transaction was rolled back and nothing changed, so retrying later
	// is right. The underlying error is wrapped too.
	ErrIO = errors.New("buffer: disk error")
)
