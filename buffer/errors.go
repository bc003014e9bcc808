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
)
