package modbus

import (
	"encoding/binary"
	"fmt"
)

// Function codes this codec handles.
const (
	FuncReadHoldingRegisters   byte = 0x03
	FuncReadInputRegisters     byte = 0x04
	FuncWriteSingleRegister    byte = 0x06
	FuncWriteMultipleRegisters byte = 0x10
)

// Exception codes a slave answers with.
const (
	ExceptionIllegalFunction    byte = 0x01
	ExceptionIllegalDataAddress byte = 0x02
	ExceptionIllegalDataValue   byte = 0x03
	ExceptionSlaveDeviceFailure byte = 0x04
)

// Limits from the Modbus application protocol specification (6.3, 6.4, 6.12).
const (
	MaxReadRegisters  = 125
	MaxWriteRegisters = 123
)

// Request is an RTU request as a slave sees it.
type Request struct {
	Slave    byte
	Function byte
	Address  uint16
	Quantity uint16   // registers to read or write (1 for FC06)
	Values   []uint16 // FC06 and FC16 only
}

// ParseRequest decodes one complete RTU request frame (CRC included), as a
// slave does once the line has been silent for 3.5 characters.
func ParseRequest(frame []byte) (Request, error) {
	if len(frame) < 4 {
		return Request{}, fmt.Errorf("%w: %d bytes", ErrShortFrame, len(frame))
	}
	if !CheckCRC(frame) {
		n := len(frame) - 2
		return Request{}, fmt.Errorf("%w: got 0x%04X, want 0x%04X", ErrCRC,
			binary.LittleEndian.Uint16(frame[n:]), CRC16(frame[:n]))
	}
	r := Request{Slave: frame[0], Function: frame[1]}
	body := frame[2 : len(frame)-2]
	switch r.Function {
	case FuncReadHoldingRegisters, FuncReadInputRegisters:
		if len(body) != 4 {
			return r, fmt.Errorf("%w: read request body is %d bytes, want 4", ErrLength, len(body))
		}
		r.Address = binary.BigEndian.Uint16(body)
		r.Quantity = binary.BigEndian.Uint16(body[2:])
		if r.Quantity < 1 || r.Quantity > MaxReadRegisters {
			return r, fmt.Errorf("%w: %d (1..%d)", ErrQuantity, r.Quantity, MaxReadRegisters)
		}
	case FuncWriteSingleRegister:
		if len(body) != 4 {
			return r, fmt.Errorf("%w: write-single body is %d bytes, want 4", ErrLength, len(body))
		}
		r.Address = binary.BigEndian.Uint16(body)
		r.Quantity = 1
		r.Values = []uint16{binary.BigEndian.Uint16(body[2:])}
	case FuncWriteMultipleRegisters:
		if len(body) < 5 {
			return r, fmt.Errorf("%w: write-multiple body is %d bytes, want at least 5", ErrLength, len(body))
		}
		r.Address = binary.BigEndian.Uint16(body)
		r.Quantity = binary.BigEndian.Uint16(body[2:])
		if r.Quantity < 1 || r.Quantity > MaxWriteRegisters {
			return r, fmt.Errorf("%w: %d (1..%d)", ErrQuantity, r.Quantity, MaxWriteRegisters)
		}
		count := int(body[4])
		if count != 2*int(r.Quantity) || len(body) != 5+count {
			return r, fmt.Errorf("%w: byte count %d for %d registers in %d bytes", ErrLength, count, r.Quantity, len(body))
		}
		r.Values = make([]uint16, r.Quantity)
		for i := range r.Values {
			r.Values[i] = binary.BigEndian.Uint16(body[5+2*i:])
		}
	default:
		return r, fmt.Errorf("%w 0x%02X", ErrFunction, r.Function)
	}
	return r, nil
}

// Encode builds the request frame (CRC included): the master's side, used by
// tests and tools; the gateway itself frames requests with goburrow/modbus.
func (r Request) Encode() []byte {
	b := []byte{r.Slave, r.Function, byte(r.Address >> 8), byte(r.Address)}
	switch r.Function {
	case FuncWriteSingleRegister:
		var v uint16
		if len(r.Values) > 0 {
			v = r.Values[0]
		}
		b = binary.BigEndian.AppendUint16(b, v)
	case FuncWriteMultipleRegisters:
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Values)))
		b = append(b, byte(2*len(r.Values)))
		for _, v := range r.Values {
			b = binary.BigEndian.AppendUint16(b, v)
		}
	default:
		b = binary.BigEndian.AppendUint16(b, r.Quantity)
	}
	return AppendCRC(b)
}

// ReadResponse builds the answer to an FC03/04 read.
func ReadResponse(slave, function byte, regs []uint16) []byte {
	b := make([]byte, 0, 5+2*len(regs))
	b = append(b, slave, function, byte(2*len(regs)))
	for _, r := range regs {
		b = binary.BigEndian.AppendUint16(b, r)
	}
	return AppendCRC(b)
}

// WriteResponse builds the answer to an FC06 (echo) or FC16 (address and quantity) write.
func WriteResponse(r Request) []byte {
	b := []byte{r.Slave, r.Function, byte(r.Address >> 8), byte(r.Address)}
	if r.Function == FuncWriteSingleRegister && len(r.Values) > 0 {
		b = binary.BigEndian.AppendUint16(b, r.Values[0])
	} else {
		b = binary.BigEndian.AppendUint16(b, r.Quantity)
	}
	return AppendCRC(b)
}

// ExceptionResponse builds an exception answer: function | 0x80 and the code.
func ExceptionResponse(slave, function, code byte) []byte {
	return AppendCRC([]byte{slave, function | 0x80, code})
}

// RequestLength is the length of the request that begins buf, as a slave
// that frames by function code sees it (libmodbus and most meter firmware
// do, rather than waiting 3.5 characters of silence): 0 while buf is too
// short to tell, -1 for a function whose length this package does not know
// (framed by silence instead).
func RequestLength(buf []byte) int {
	if len(buf) < 2 {
		return 0
	}
	switch buf[1] {
	case FuncReadHoldingRegisters, FuncReadInputRegisters, FuncWriteSingleRegister:
		return 8
	case FuncWriteMultipleRegisters:
		if len(buf) < 7 {
			return 0
		}
		return 9 + int(buf[6])
	}
	return -1
}

// ResponseLength is the length of a normal answer to req (a request frame or
// its PDU-prefixed form starting with slave and function), so a master can
// stop reading as soon as the whole answer is in. An exception answer is
// always 5 bytes, recognisable by the 0x80 bit in its second byte.
func ResponseLength(req []byte) int {
	if len(req) < 6 {
		return 0
	}
	switch req[1] {
	case FuncReadHoldingRegisters, FuncReadInputRegisters:
		return 5 + 2*int(binary.BigEndian.Uint16(req[4:]))
	case FuncWriteSingleRegister, FuncWriteMultipleRegisters:
		return 8
	}
	return 0
}

// ExceptionLength is the length of every exception answer.
const ExceptionLength = 5

// ParseReadResponse checks an FC03/04 answer to a request for quantity
// registers and returns the registers; an exception answer becomes an
// *ExceptionError.
func ParseReadResponse(frame []byte, slave, function byte, quantity int) ([]uint16, error) {
	if len(frame) < ExceptionLength {
		return nil, fmt.Errorf("%w: %d bytes", ErrShortFrame, len(frame))
	}
	if !CheckCRC(frame) {
		return nil, ErrCRC
	}
	if frame[0] != slave {
		return nil, fmt.Errorf("%w: answer from slave %d, asked %d", ErrLength, frame[0], slave)
	}
	if frame[1] == function|0x80 {
		return nil, &ExceptionError{Function: function, Code: frame[2]}
	}
	if frame[1] != function || int(frame[2]) != 2*quantity || len(frame) != 5+2*quantity {
		return nil, fmt.Errorf("%w: function 0x%02X byte count %d in %d bytes", ErrLength, frame[1], frame[2], len(frame))
	}
	regs := make([]uint16, quantity)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(frame[3+2*i:])
	}
	return regs, nil
}

// ExceptionError is a slave's exception answer.
type ExceptionError struct {
	Function byte
	Code     byte
}

func (e *ExceptionError) Error() string {
	names := map[byte]string{1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "slave device failure"}
	n := names[e.Code]
	if n == "" {
		n = "exception"
	}
	return fmt.Sprintf("modbus: function 0x%02X: %s (code %d)", e.Function, n, e.Code)
}
