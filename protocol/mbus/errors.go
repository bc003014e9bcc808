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

// ErrApplication is wrapped by ApplicationError, the answer of a slave that
// sends CI 70 (general application error) instead of data.
var ErrApplication = errors.New("application error")

// ApplicationError is a slave's CI 70 answer. Code is the first data byte
// (EN 13757-3 table "application errors"); a CI 70 frame without data has
// code 0 (unspecified).
type ApplicationError struct {
	Code byte
}

// Error names the code.
func (e *ApplicationError) Error() string {
	name := "reserved"
	switch e.Code {
	case 0:
		name = "unspecified error"
	case 1:
		name = "unimplemented CI-field"
	case 2:
		name = "buffer too long, truncated"
	case 3:
		name = "too many records"
	case 4:
		name = "premature end of record"
	case 5:
		name = "more than 10 DIFEs"
	case 6:
		name = "more than 10 VIFEs"
	case 8:
		name = "application too busy for handling readout request"
	case 9:
		name = "too many readouts"
	}
	return "application error 0x" + hex2(e.Code) + ": " + name
}

// Unwrap lets errors.Is(err, ErrApplication) match.
func (e *ApplicationError) Unwrap() error { return ErrApplication }

func hex2(b byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[b>>4], digits[b&0x0F]})
}
