package modbus

import (
	"errors"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		req  Request
	}{
		{"read holding", Request{Slave: 1, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 10}},
		{"read input", Request{Slave: 247, Function: FuncReadInputRegisters, Address: 0x18, Quantity: 4}},
		{"write single", Request{Slave: 3, Function: FuncWriteSingleRegister, Address: 1441, Quantity: 1, Values: []uint16{7}}},
		{"write multiple", Request{Slave: 9, Function: FuncWriteMultipleRegisters, Address: 100, Quantity: 3, Values: []uint16{1, 2, 0xFFFF}}},
	}
	for _, tt := range tests {
		f := tt.req.Encode()
		got, err := ParseRequest(f)
		if err != nil {
			t.Fatalf("%s: ParseRequest(% X): %v", tt.name, f, err)
		}
		if got.Slave != tt.req.Slave || got.Function != tt.req.Function || got.Address != tt.req.Address ||
			got.Quantity != tt.req.Quantity || len(got.Values) != len(tt.req.Values) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.req)
		}
		for i := range got.Values {
			if got.Values[i] != tt.req.Values[i] {
				t.Errorf("%s: value %d = %d, want %d", tt.name, i, got.Values[i], tt.req.Values[i])
			}
		}
	}
	// The classic example frame.
	if r, err := ParseRequest([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD}); err != nil || r.Quantity != 10 {
		t.Errorf("classic frame: %+v %v", r, err)
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"short", []byte{1, 3}, ErrShortFrame},
		{"crc", []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCE}, ErrCRC},
		{"function", AppendCRC([]byte{1, 0x2B, 0, 0, 0, 1}), ErrFunction},
		{"quantity 0", AppendCRC([]byte{1, 3, 0, 0, 0, 0}), ErrQuantity},
		{"quantity 126", AppendCRC([]byte{1, 3, 0, 0, 0, 126}), ErrQuantity},
		{"read length", AppendCRC([]byte{1, 3, 0, 0, 0, 1, 9}), ErrLength},
		{"write count", AppendCRC([]byte{1, 0x10, 0, 0, 0, 2, 3, 0, 1, 0, 2}), ErrLength},
	}
	for _, tt := range tests {
		if _, err := ParseRequest(tt.frame); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestResponses(t *testing.T) {
	req := Request{Slave: 5, Function: FuncReadInputRegisters, Address: 2, Quantity: 3}
	resp := ReadResponse(5, FuncReadInputRegisters, []uint16{1, 2, 3})
	if n := ResponseLength(req.Encode()); n != len(resp) {
		t.Errorf("ResponseLength = %d, want %d", n, len(resp))
	}
	regs, err := ParseReadResponse(resp, 5, FuncReadInputRegisters, 3)
	if err != nil || len(regs) != 3 || regs[2] != 3 {
		t.Errorf("ParseReadResponse = %v, %v", regs, err)
	}
	ex := ExceptionResponse(5, FuncReadInputRegisters, ExceptionIllegalDataAddress)
	if len(ex) != ExceptionLength {
		t.Errorf("exception length %d", len(ex))
	}
	_, err = ParseReadResponse(ex, 5, FuncReadInputRegisters, 3)
	var xe *ExceptionError
	if !errors.As(err, &xe) || xe.Code != ExceptionIllegalDataAddress {
		t.Errorf("exception parse: %v", err)
	}
	if _, err := ParseReadResponse(resp, 6, FuncReadInputRegisters, 3); err == nil {
		t.Error("answer from the wrong slave accepted")
	}
	w := Request{Slave: 1, Function: FuncWriteSingleRegister, Address: 9, Quantity: 1, Values: []uint16{4}}
	if got := WriteResponse(w); string(got) != string(w.Encode()) {
		t.Errorf("FC06 answer is not an echo: % X", got)
	}
}

func TestRequestLength(t *testing.T) {
	for _, c := range []struct {
		buf  []byte
		want int
	}{
		{nil, 0},
		{[]byte{1}, 0},
		{[]byte{1, 3}, 8},
		{[]byte{1, 4, 0, 0}, 8},
		{[]byte{1, 6}, 8},
		{[]byte{1, 16, 0, 1, 0, 2}, 0},
		{Request{Slave: 9, Function: FuncWriteMultipleRegisters, Address: 100, Quantity: 2, Values: []uint16{1, 2}}.Encode(), 13},
		{[]byte{1, 0x2B, 0x0E, 1, 0}, -1},
	} {
		if got := RequestLength(c.buf); got != c.want {
			t.Errorf("RequestLength(% X) = %d, want %d", c.buf, got, c.want)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD})
	f.Add(Request{Slave: 9, Function: FuncWriteMultipleRegisters, Address: 100, Quantity: 2, Values: []uint16{1, 2}}.Encode())
	f.Add(Request{Slave: 3, Function: FuncWriteSingleRegister, Address: 1, Values: []uint16{7}}.Encode())
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := ParseRequest(frame)
		if err != nil {
			return
		}
		// Whatever parses must re-encode to the same frame.
		if got := r.Encode(); string(got) != string(frame) {
			t.Fatalf("round trip: % X -> %+v -> % X", frame, r, got)
		}
		// A slave framing by length takes exactly this frame: every prefix
		// either cannot tell yet or already knows the whole length.
		if n := RequestLength(frame); n != len(frame) {
			t.Fatalf("RequestLength(% X) = %d, want %d", frame, n, len(frame))
		}
		for i := range frame {
			if n := RequestLength(frame[:i]); n != 0 && n != len(frame) {
				t.Fatalf("RequestLength of a %d-byte prefix of % X = %d", i, frame, n)
			}
		}
	})
}

func FuzzParseReadResponse(f *testing.F) {
	f.Add(ReadResponse(1, 3, []uint16{1, 2}), uint8(2))
	f.Add(ExceptionResponse(1, 3, 2), uint8(1))
	f.Fuzz(func(t *testing.T, frame []byte, q uint8) {
		regs, err := ParseReadResponse(frame, 1, 3, int(q))
		if err == nil && len(regs) != int(q) {
			t.Fatalf("got %d registers, asked %d", len(regs), q)
		}
	})
}
