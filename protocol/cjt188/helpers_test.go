package cjt188

// Frames only the tests build: a master never answers, and tidegate never
// rewrites a meter's address (A018 is the simulator's to take).

// Reply builds a meter's answer to req: the same type, address, DI order
// and SER, the reply control code of req's function, and body.
func Reply(req Message, body []byte) Frame {
	return Request(req.Type, req.Address, req.Control.Reply(), req.DI, req.Order, req.SER, body)
}

// WriteAddress is the A018 request giving the meter at a (often the
// broadcast address, with one meter on the line) the address to.
func WriteAddress(t MeterType, a Address, o DIOrder, ser byte, to Address) Frame {
	return Request(t, a, FuncWriteAddress, DIWriteAddress, o, ser, to[:])
}
