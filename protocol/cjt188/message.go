package cjt188

import "fmt"

// Message is a frame's data field read as DI, SER and the values after them.
type Message struct {
	Frame
	DI    DI
	Order DIOrder // as found on the wire
	SER   byte    // sequence number; a reply echoes the request's
	Body  []byte  // the bytes after SER
}

// Parse reads the DI and SER of a frame. An error reply (D6) whose data
// field is too short for them is still parsed, with DI 0: its status, if
// any, is in Body.
func Parse(f Frame) (Message, error) {
	m := Message{Frame: f}
	if len(f.Data) < 3 {
		if f.Control.IsError() {
			m.Body = f.Data
			return m, nil
		}
		return m, fmt.Errorf("%w %02X: a data field holds at least DI and SER (3 bytes)", ErrLength, len(f.Data))
	}
	m.DI, m.Order = readDI(f.Data[0], f.Data[1])
	m.SER = f.Data[2]
	m.Body = f.Data[3:]
	return m, nil
}

// DecodeMessage is Decode followed by Parse.
func DecodeMessage(b []byte) (Message, int, error) {
	f, n, err := Decode(b)
	if err != nil {
		return Message{}, 0, err
	}
	m, err := Parse(f)
	return m, n, err
}

// Request builds a master's frame: the data field is the DI in order o,
// SER and body.
func Request(t MeterType, a Address, c Control, di DI, o DIOrder, ser byte, body []byte) Frame {
	data := make([]byte, 3, 3+len(body))
	di.put(data, o)
	data[2] = ser
	data = append(data, body...)
	return Frame{Type: t, Address: a, Control: c, Data: data}
}

// ReadData is the read-data request for di (901F, 907F, D120...).
func ReadData(t MeterType, a Address, di DI, o DIOrder, ser byte) Frame {
	return Request(t, a, FuncReadData, di, o, ser, nil)
}

// ReadAddress is the broadcast read-address request (810A): every meter on
// the line answers with its own address.
func ReadAddress(o DIOrder, ser byte) Frame {
	return Request(TypeAny, Broadcast, FuncReadAddress, DIAddress, o, ser, nil)
}

// WriteClock is the A015 request setting the meter clock to c, written in order co.
func WriteClock(t MeterType, a Address, o DIOrder, ser byte, c Clock, co ClockOrder) (Frame, error) {
	body, err := AppendClock(nil, c, co)
	if err != nil {
		return Frame{}, err
	}
	return Request(t, a, FuncWriteData, DIWriteClock, o, ser, body), nil
}

// Valve actions of A017.
const (
	ValveOpen     byte = 0x55
	ValveClose    byte = 0x99
	ValveExercise byte = 0xAA // some vendors: move the valve once to keep it free
)

// WriteValve is the A017 valve-control request.
func WriteValve(t MeterType, a Address, o DIOrder, ser byte, action byte) Frame {
	return Request(t, a, FuncWriteData, DIValve, o, ser, []byte{action})
}

// WriteRequest is a decoded write: what a simulated meter is asked to do.
type WriteRequest struct {
	DI      DI
	Clock   Clock   // A015
	Action  byte    // A017: ValveOpen, ValveClose, ValveExercise
	Address Address // A018
}

// ParseWrite decodes the body of an A015, A017 or A018 request. co is the
// clock order the meter expects (ClockAuto guesses).
func ParseWrite(m Message, co ClockOrder) (WriteRequest, error) {
	w := WriteRequest{DI: m.DI}
	switch m.DI {
	case DIWriteClock:
		if len(m.Body) < 7 {
			return w, fmt.Errorf("%w %02X: A015 carries 7 clock bytes", ErrLength, len(m.Frame.Data))
		}
		c, err := DecodeClock(m.Body[:7], co)
		if err != nil {
			return w, err
		}
		w.Clock = c
	case DIValve:
		if len(m.Body) < 1 {
			return w, fmt.Errorf("%w %02X: A017 carries the valve action", ErrLength, len(m.Frame.Data))
		}
		w.Action = m.Body[0]
	case DIWriteAddress:
		if len(m.Body) < 7 {
			return w, fmt.Errorf("%w %02X: A018 carries the 7-byte address", ErrLength, len(m.Frame.Data))
		}
		copy(w.Address[:], m.Body[:7])
		if !w.Address.Valid() || w.Address.IsBroadcast() {
			return w, fmt.Errorf("%w %s: not 14 BCD digits", ErrAddress, w.Address)
		}
	default:
		return w, fmt.Errorf("%w %s: not a write this package knows (A015, A017, A018)", ErrDI, m.DI)
	}
	return w, nil
}

// CheckReply checks that m answers req: a reply from the addressed meter
// (any meter for a broadcast), for req's function, with req's DI and SER.
// An error reply gives ErrMeterError.
func CheckReply(req, m Message) error {
	if !m.Control.IsReply() {
		return fmt.Errorf("%w %s: a request, not a reply", ErrControl, m.Control)
	}
	if m.Control.Function() != req.Control.Function() {
		return fmt.Errorf("%w %s: answers function %02X, asked %02X", ErrControl, m.Control, byte(m.Control.Function()), byte(req.Control.Function()))
	}
	if !req.Address.IsBroadcast() && m.Address != req.Address {
		return fmt.Errorf("%w %s answered, asked %s", ErrAddress, m.Address, req.Address)
	}
	if m.Control.IsError() {
		return fmt.Errorf("%w %s from %s (data % X)", ErrMeterError, m.Control, m.Address, m.Frame.Data)
	}
	if m.DI != req.DI {
		return fmt.Errorf("%w %s, asked %s", ErrDI, m.DI, req.DI)
	}
	if m.SER != req.SER {
		return fmt.Errorf("%w: SER %02X, asked %02X", ErrSER, m.SER, req.SER)
	}
	return nil
}
