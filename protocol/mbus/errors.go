package mbus

import "errors"

// Errors returned by the decoders. They are wrapped with details (offsets,
// got/want values); test with errors.Is.
var (
	// ErrIncomplete means the input is a valid prefix of a frame and more
	// bytes are needed. A stream reader keeps reading; it must not discard.
	ErrIncomplete = errors.New("incomplete frame")
	// ErrStartByte means the first byte is not E5, 10 or 68, or the second 68
	// of a long frame is missing.
	ErrStartByte = errors.New("bad start byte")
	// ErrStopByte means the byte after the checksum is not 16.
	ErrStopByte = errors.New("bad stop byte")
	// ErrLength means the two L fields of a long frame differ or are too small.
	ErrLength = errors.New("bad length")
	// ErrChecksum means the arithmetic sum of C, A, CI and data does not match CS.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrTooLong means the payload does not fit a long frame (max 252 data bytes).
	ErrTooLong = errors.New("payload too long")
	// ErrCI means the CI field is not one this decoder understands.
	ErrCI = errors.New("unsupported CI field")
	// ErrTruncated means an application-layer structure ends before its
	// declared length (header, DIF data, LVAR, VIF chain).
	ErrTruncated = errors.New("truncated data")
	// ErrTooManyExtensions means a DIFE or VIFE chain exceeds 10 extensions.
	ErrTooManyExtensions = errors.New("too many extension bytes")
	// ErrBadValue means a data field cannot be represented (bad BCD digit,
	// invalid date, LVAR code reserved by the standard).
	ErrBadValue = errors.New("bad value")
	// ErrNotLongFrame means a telegram with application data was expected but
	// the frame is an ACK, short or control frame.
	ErrNotLongFrame = errors.New("not a long frame")
)
