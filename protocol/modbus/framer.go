package modbus

import "bytes"

// AnswerScan is what ScanAnswer made of the bytes received since a request
// went out.
type AnswerScan struct {
	// Frame is the answer, a slice of the scanned bytes; nil while no whole
	// answer (or exception frame) with a good CRC is in.
	Frame []byte
	// Used is how many of the scanned bytes are settled: the dropped ones,
	// then the frame. Without a frame the caller keeps buf[Used:] and scans
	// it again, with more bytes appended, once they arrive.
	Used int
	// Stray counts the bytes dropped: noise, another master, the tail of a
	// late answer, echoes, and each start byte slid past after a bad CRC.
	Stray int
	// Echoes counts exact copies of the request that were dropped (an
	// RS-485 converter with automatic direction control often echoes).
	Echoes int
	// CRCErrors counts frames of the answer's shape whose CRC failed; the
	// scan slid one byte past the start of each and looked again.
	CRCErrors int
}

// ScanAnswer finds the answer to req (an RTU request frame, CRC included)
// in buf: the answer's slave id, then the function with its full length and
// a good CRC, or the 5-byte exception frame (function | 0x80). Bytes before
// it are dropped one at a time, an exact echo of req as a whole; after a CRC
// failure the scan slides one byte and tries again, since an answer may
// start inside what looked like one.
//
// An FC06 answer is identical to its request, so its echo can only be told
// from the answer when the line is known to echo: echoing says an echo is
// still to come, and the first copy is dropped (a caller scanning in chunks
// passes false once a scan has reported the echo).
//
// ScanAnswer is pure: the caller owns the line, the deadline and the
// buffer, and adds the counts of every call (each byte is counted once, in
// the call that settles it).
func ScanAnswer(req, buf []byte, echoing bool) AnswerScan {
	var s AnswerScan
	want := ResponseLength(req)
	if want == 0 {
		// Nothing could be an answer to a request we cannot frame.
		s.Used, s.Stray = len(buf), len(buf)
		return s
	}
	slave, fc := req[0], req[1]
	dropEcho := want != len(req) || echoing
	i := 0
	drop := func(n int) { i += n; s.Stray += n }
	// wait settles the scan at i, where a frame may be growing, unless a
	// whole frame already follows: then what was growing was none.
	wait := func() AnswerScan {
		for j := i + 1; j < len(buf); j++ {
			if f := whole(buf[j:], slave, fc, want); f != nil && !(dropEcho && bytes.Equal(f, req)) {
				s.Stray += j - i
				return s.found(j, f)
			}
		}
		return s.settle(i)
	}
	for i < len(buf) {
		rest := buf[i:]
		if rest[0] != slave {
			drop(1)
			continue
		}
		if len(rest) < 2 {
			return wait()
		}
		switch rest[1] {
		case fc | 0x80:
			if len(rest) < ExceptionLength {
				return wait()
			}
			if CheckCRC(rest[:ExceptionLength]) {
				return s.found(i, rest[:ExceptionLength])
			}
			s.CRCErrors++
			drop(1)
		case fc:
			if dropEcho && bytes.HasPrefix(rest, req) {
				s.Echoes++
				drop(len(req))
				dropEcho = want != len(req) // one echo of an FC06; the next copy is the answer
				continue
			}
			// FC03/04 answers carry their byte count: another count is
			// not our answer.
			shape := fc != FuncReadHoldingRegisters && fc != FuncReadInputRegisters || len(rest) < 3 || int(rest[2]) == want-5
			complete := len(rest) >= want
			if shape && complete && CheckCRC(rest[:want]) {
				return s.found(i, rest[:want])
			}
			if dropEcho && len(rest) < len(req) && bytes.HasPrefix(req, rest) {
				return wait() // an echo so far: more bytes will tell
			}
			if !shape {
				drop(1)
				continue
			}
			if !complete {
				return wait()
			}
			s.CRCErrors++
			drop(1)
		default:
			drop(1)
		}
	}
	return s.settle(i)
}

func (s AnswerScan) settle(i int) AnswerScan {
	s.Used = i
	return s
}

func (s AnswerScan) found(i int, f []byte) AnswerScan {
	s.Frame, s.Used = f, i+len(f)
	return s
}

// whole is the frame at the start of b when a complete answer or exception
// frame with a good CRC is there, else nil.
func whole(b []byte, slave, fc byte, want int) []byte {
	if len(b) < ExceptionLength || b[0] != slave {
		return nil
	}
	switch {
	case b[1] == fc|0x80 && CheckCRC(b[:ExceptionLength]):
		return b[:ExceptionLength]
	case b[1] == fc && len(b) >= want && CheckCRC(b[:want]) &&
		(fc != FuncReadHoldingRegisters && fc != FuncReadInputRegisters || int(b[2]) == want-5):
		return b[:want]
	}
	return nil
}
