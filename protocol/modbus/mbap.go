package modbus

import (
	"encoding/binary"
	"errors"
)

// MBAPHeaderLength is the Modbus TCP header: transaction id, protocol id
// (0), length of what follows, unit id.
const MBAPHeaderLength = 7

// ErrMBAP: a Modbus TCP stream that cannot be framed (a protocol id other
// than 0, or a length outside 2..254): the connection is out of step.
var ErrMBAP = errors.New("modbus tcp: bad MBAP header")

// MBAPScan is what ScanMBAP made of the bytes received on a Modbus TCP
// connection.
type MBAPScan struct {
	Frame []byte // the answer to the request (header included); nil while it is not in
	Used  int    // bytes settled: stale frames skipped, then the frame
	Stale int    // whole frames skipped: other transaction or unit ids (late answers)
}

// ScanMBAP finds the answer to req (an MBAP request ADU) in buf, the bytes
// read from the connection: whole frames with another transaction id or
// unit id are answers to earlier requests that arrived late, and are
// skipped. TCP delivers whole bytes in order, so a header that makes no
// sense means the stream is lost (ErrMBAP), not a byte to slide past.
func ScanMBAP(req, buf []byte) (MBAPScan, error) {
	var s MBAPScan
	if len(req) < MBAPHeaderLength {
		return s, ErrMBAP
	}
	for {
		rest := buf[s.Used:]
		if len(rest) < MBAPHeaderLength {
			return s, nil
		}
		n := int(binary.BigEndian.Uint16(rest[4:]))
		if binary.BigEndian.Uint16(rest[2:]) != 0 || n < 2 || n > 254 {
			return s, ErrMBAP
		}
		end := 6 + n
		if len(rest) < end {
			return s, nil
		}
		if rest[0] == req[0] && rest[1] == req[1] && rest[6] == req[6] {
			s.Frame = rest[:end]
			s.Used += end
			return s, nil
		}
		s.Stale++
		s.Used += end
	}
}
