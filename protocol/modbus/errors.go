package modbus

import "errors"

var (
	// ErrShortFrame: fewer bytes than the smallest frame of its kind.
	ErrShortFrame = errors.New("modbus: frame too short")
	// ErrCRC: the frame's CRC-16 does not match its content.
	ErrCRC = errors.New("modbus: CRC mismatch")
	// ErrFunction: a function code this codec does not handle.
	ErrFunction = errors.New("modbus: unsupported function code")
	// ErrQuantity: a register count outside what the function allows.
	ErrQuantity = errors.New("modbus: register quantity out of range")
	// ErrLength: the frame's byte count disagrees with its content.
	ErrLength = errors.New("modbus: frame length mismatch")
	// ErrRegisters: too few registers for the value's type.
	ErrRegisters = errors.New("modbus: not enough registers for type")
	// ErrType: an unknown value type or word order name.
	ErrType = errors.New("modbus: unknown type")
	// ErrBCD: a nibble above 9 in a BCD value.
	ErrBCD = errors.New("modbus: invalid BCD digit")
)
