package modbus

import (
	"bytes"
	"testing"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestScanAnswer(t *testing.T) {
	read := Request{Slave: 7, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 4}.Encode()
	answer := ReadResponse(7, FuncReadHoldingRegisters, []uint16{1, 2, 3, 4})
	exc := ExceptionResponse(7, FuncReadHoldingRegisters, ExceptionIllegalDataAddress)
	bad := append([]byte(nil), answer...)
	bad[len(bad)-1] ^= 0xFF
	// A request whose start address's high byte equals the answer's byte
	// count: its echo looks like the start of an answer for three bytes.
	tricky := Request{Slave: 7, Function: FuncReadHoldingRegisters, Address: 0x0800, Quantity: 4}.Encode()
	write := Request{Slave: 7, Function: FuncWriteSingleRegister, Address: 9, Quantity: 1, Values: []uint16{5}}.Encode()
	// A frame of slave 7 that hides inside another's data.
	late := ReadResponse(6, FuncReadHoldingRegisters, []uint16{0x0703, 0x0800, 0, 0})

	tests := []struct {
		name               string
		req, buf           []byte
		echoing            bool
		frame              []byte
		stray, echoes, crc int
		used               int
	}{
		{name: "clean", req: read, buf: answer, frame: answer, used: len(answer)},
		{name: "echo then answer", req: read, buf: cat(read, answer), frame: answer, stray: len(read), echoes: 1, used: len(read) + len(answer)},
		{name: "tricky echo then answer", req: tricky, buf: cat(tricky, answer), frame: answer, stray: len(tricky), echoes: 1, used: len(tricky) + len(answer)},
		{name: "echo alone", req: read, buf: read, stray: len(read), echoes: 1, used: len(read)},
		{name: "half an echo waits", req: read, buf: read[:5], used: 0},
		{name: "noise, echo, answer", req: read, buf: cat([]byte{0xFF, 7, 0x10}, read, answer), frame: answer, stray: 3 + len(read), echoes: 1, used: 3 + len(read) + len(answer)},
		{name: "exception", req: read, buf: cat(read, exc), frame: exc, stray: len(read), echoes: 1, used: len(read) + len(exc)},
		{name: "bad CRC slides on to the real answer", req: read, buf: cat(bad, answer), frame: answer, stray: len(bad), crc: 1, used: len(bad) + len(answer)},
		{name: "bad CRC alone", req: read, buf: bad, stray: len(bad), crc: 1, used: len(bad)},
		{name: "late answer of another slave", req: read, buf: cat(late, answer), frame: answer, stray: len(late), crc: 1, used: len(late) + len(answer)},
		{name: "partial answer waits", req: read, buf: answer[:6], used: 0},
		{name: "bytes after the answer stay", req: read, buf: cat(answer, []byte{1, 2}), frame: answer, used: len(answer)},
		{name: "FC06 answer is its request", req: write, buf: write, frame: write, used: len(write)},
		{name: "FC06 on an echoing line", req: write, buf: cat(write, write), echoing: true, frame: write, stray: len(write), echoes: 1, used: 2 * len(write)},
		{name: "unframable request", req: []byte{7, 0x2B, 0, 0, 0, 0}, buf: answer, stray: len(answer), used: len(answer)},
	}
	for _, tt := range tests {
		s := ScanAnswer(tt.req, tt.buf, tt.echoing)
		if !bytes.Equal(s.Frame, tt.frame) || s.Stray != tt.stray || s.Echoes != tt.echoes || s.CRCErrors != tt.crc || s.Used != tt.used {
			t.Errorf("%s: got frame % X used %d stray %d echoes %d crc %d; want frame % X used %d stray %d echoes %d crc %d",
				tt.name, s.Frame, s.Used, s.Stray, s.Echoes, s.CRCErrors, tt.frame, tt.used, tt.stray, tt.echoes, tt.crc)
		}
	}
}

// TestScanAnswerByteByByte: fed one byte at a time, keeping only what is not
// settled, the scan finds the same frame and counts the same as in one go.
func TestScanAnswerByteByByte(t *testing.T) {
	read := Request{Slave: 7, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 4}.Encode()
	answer := ReadResponse(7, FuncReadHoldingRegisters, []uint16{1, 2, 3, 4})
	bad := append([]byte(nil), answer...)
	bad[4] ^= 1
	buf := cat([]byte{0, 7}, read, bad, []byte{7, 3}, answer)
	one := ScanAnswer(read, buf, false)
	inc := feed(read, buf, false, 1)
	if !bytes.Equal(one.Frame, answer) || !bytes.Equal(inc.Frame, answer) || one.Stray != inc.Stray || one.Echoes != inc.Echoes || one.CRCErrors != inc.CRCErrors {
		t.Errorf("one go %+v, byte by byte %+v", one, inc)
	}
}

// feed scans buf in chunks of n bytes as a transporter would, dropping what
// each scan settles, and sums the counts.
func feed(req, buf []byte, echoing bool, n int) AnswerScan {
	var sum AnswerScan
	var pending []byte
	for off := 0; off < len(buf); off += n {
		pending = append(pending, buf[off:min(off+n, len(buf))]...)
		s := ScanAnswer(req, pending, echoing && sum.Echoes == 0)
		sum.Stray += s.Stray
		sum.Echoes += s.Echoes
		sum.CRCErrors += s.CRCErrors
		if s.Frame != nil {
			sum.Frame = s.Frame
			return sum
		}
		pending = pending[s.Used:]
	}
	return sum
}

// FuzzScanAnswer: whatever the line delivers, the scan never panics, only
// returns a frame of the asked slave and function with a good CRC, accounts
// for every byte, agrees with itself fed in chunks, and finds a valid answer
// that follows any noise.
func FuzzScanAnswer(f *testing.F) {
	read := Request{Slave: 1, Function: FuncReadHoldingRegisters, Address: 0, Quantity: 17}.Encode()
	answer := ReadResponse(1, FuncReadHoldingRegisters, make([]uint16, 17))
	f.Add(byte(1), byte(0), uint16(0), uint16(17), cat(read, answer), uint8(3), uint16(0))
	f.Add(byte(7), byte(1), uint16(0x0800), uint16(4), []byte{7, 3, 8, 0, 0, 4, 0xC7, 0xF9, 7, 0x83, 2}, uint8(1), uint16(1))
	f.Add(byte(3), byte(2), uint16(9), uint16(1), []byte{3, 6, 0, 9, 0, 1}, uint8(2), uint16(5))
	f.Add(byte(9), byte(3), uint16(100), uint16(2), []byte{9, 0x10, 0, 100, 0, 2, 0xFF}, uint8(7), uint16(0xFFFF))
	fcs := []byte{FuncReadHoldingRegisters, FuncReadInputRegisters, FuncWriteSingleRegister, FuncWriteMultipleRegisters}
	f.Fuzz(func(t *testing.T, slave, fcSel byte, addr, qty uint16, noise []byte, chunk uint8, val uint16) {
		fc := fcs[int(fcSel)%len(fcs)]
		q := 1 + qty%MaxWriteRegisters
		r := Request{Slave: slave, Function: fc, Address: addr, Quantity: q}
		switch fc {
		case FuncWriteSingleRegister:
			r.Quantity, r.Values = 1, []uint16{val}
		case FuncWriteMultipleRegisters:
			r.Values = make([]uint16, q)
			r.Values[0] = val
		}
		req := r.Encode()
		for _, echoing := range []bool{false, true} {
			s := ScanAnswer(req, noise, echoing)
			if s.Used > len(noise) || s.Used != s.Stray+len(s.Frame) {
				t.Fatalf("used %d of %d bytes, stray %d, frame %d", s.Used, len(noise), s.Stray, len(s.Frame))
			}
			if s.Frame != nil {
				if !CheckCRC(s.Frame) || s.Frame[0] != slave || s.Frame[1]&^0x80 != fc || !bytes.Equal(noise[s.Used-len(s.Frame):s.Used], s.Frame) {
					t.Fatalf("bad frame % X", s.Frame)
				}
			}
			inc := feed(req, noise, echoing, 1+int(chunk)%16)
			if !bytes.Equal(inc.Frame, s.Frame) || inc.Stray != s.Stray || inc.Echoes != s.Echoes || inc.CRCErrors != s.CRCErrors {
				t.Fatalf("in chunks %+v, in one go %+v", inc, s)
			}
		}
		// A valid answer after the noise is found (unless the noise and the
		// answer together hold a copy of the request, which is an echo).
		var ans []byte
		switch fc {
		case FuncReadHoldingRegisters, FuncReadInputRegisters:
			ans = ReadResponse(slave, fc, make([]uint16, q))
		default:
			ans = WriteResponse(r)
		}
		if val%5 == 0 {
			ans = ExceptionResponse(slave, fc, byte(val))
		}
		buf := cat(noise, ans)
		if bytes.Contains(buf, req) {
			return
		}
		if s := ScanAnswer(req, buf, false); s.Frame == nil {
			t.Fatalf("no frame in % X (answer % X): %+v", buf, ans, s)
		}
	})
}
