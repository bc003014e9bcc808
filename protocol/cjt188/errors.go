package cjt188

import "errors"

// Errors returned by the decoders, wrapped with what was found and what was
// expected; the wrapped text starts with the sentinel's, so
// fmt.Errorf("%w 08, computed 13", ErrChecksum) reads "checksum 08,
// computed 13". Test with errors.Is.
var (
	// ErrIncomplete: the input is a valid beginning of a frame and more
	// bytes are needed. A stream reader keeps reading.
	ErrIncomplete = errors.New("incomplete frame")
	// ErrNoStart: no start byte 68 in the input.
	ErrNoStart = errors.New("no start byte 68")
	// ErrChecksum: CS is not the sum of the bytes from 68 to the last data byte.
	ErrChecksum = errors.New("checksum")
	// ErrEnd: the byte after CS is not 16.
	ErrEnd = errors.New("end byte")
	// ErrLength: the data field is too short or too long for what it carries.
	ErrLength = errors.New("length")
	// ErrBCD: a field that must be BCD has a digit above 9.
	ErrBCD = errors.New("bad BCD")
	// ErrUnit: a unit code that is unknown, or not a volume where one is needed.
	ErrUnit = errors.New("unit")
	// ErrClock: a meter clock that is no valid date and time.
	ErrClock = errors.New("meter clock")
	// ErrDI: a data identifier other than the one expected.
	ErrDI = errors.New("data identifier")
	// ErrControl: a control code other than the one expected (a request
	// where a reply was expected, another function).
	ErrControl = errors.New("control code")
	// ErrAddress: an address that is not 14 BCD digits (or AA×7).
	ErrAddress = errors.New("address")
	// ErrMeterError: the meter answered with its error bit (D6) set; the
	// error reply's status bytes follow in the message.
	ErrMeterError = errors.New("meter error reply")
)

// ErrSER: a reply whose sequence number is not the request's (a late
// answer to an earlier request).
var ErrSER = errors.New("sequence number")
