package modbus

import (
	"encoding/binary"
	"errors"
	"testing"

	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
)

// slaves answers RTU requests for the given addresses with registers equal
// to their address; late lists the slaves that answer after the timeout.
func slaves(addrs []byte, late ...byte) func([]byte) ([][]byte, bool) {
	return func(req []byte) ([][]byte, bool) {
		r, err := pmodbus.ParseRequest(req)
		if err != nil {
			return nil, false
		}
		for _, a := range addrs {
			if a != r.Slave {
				continue
			}
			var out []byte
			switch r.Function {
			case pmodbus.FuncWriteSingleRegister:
				out = pmodbus.WriteResponse(r)
			default:
				regs := make([]uint16, r.Quantity)
				for i := range regs {
					regs[i] = uint16(a)
				}
				out = pmodbus.ReadResponse(a, r.Function, regs)
			}
			isLate := false
			for _, l := range late {
				isLate = isLate || l == a
			}
			return [][]byte{out}, isLate
		}
		return nil, false
	}
}

func memClient(m *memLine) *Client {
	if m.cfg.Baud == 0 {
		m.cfg = link.Config{Baud: 921600, DataBits: 8, StopBits: 1} // keeps the framer's catch-up sleeps negligible
	}
	return newClient(m, false, 0)
}

// TestEchoingConverter: every request comes back before the answer. Each
// poll used to fail with a CRC error (the echo taken for the answer).
func TestEchoingConverter(t *testing.T) {
	m := &memLine{echo: true, answer: slaves([]byte{1, 2})}
	c := memClient(m)
	for i := range 3 {
		regs, err := c.ReadRegisters(byte(1+i%2), pmodbus.FuncReadHoldingRegisters, 0, 17)
		if err != nil || len(regs) != 17 || regs[0] != uint16(1+i%2) {
			t.Fatalf("poll %d: %v %v", i, regs, err)
		}
	}
	// An FC06 answer is its request: on a line known to echo, the first
	// copy is the echo, the second the answer.
	if err := c.WriteRegister(2, 9, 5); err != nil {
		t.Fatalf("write on an echoing line: %v", err)
	}
	if got := c.Counters.Echoes.Load(); got != 4 {
		t.Errorf("echoes counted %d, want 4", got)
	}
	if c.Counters.CRCErrors.Load() != 0 || c.Counters.Timeouts.Load() != 0 {
		t.Errorf("CRC errors %d, timeouts %d", c.Counters.CRCErrors.Load(), c.Counters.Timeouts.Load())
	}
	// Without echoes an FC06 answer is taken at once.
	q := &memLine{answer: slaves([]byte{2})}
	if err := memClient(q).WriteRegister(2, 9, 5); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestFramerSlidesPastBadCRC: a garbled frame that looks like the answer's
// start comes first; the transporter slides on and takes the good one. A
// lone garbled answer is a CRC error at once, not a timeout.
func TestFramerSlidesPastBadCRC(t *testing.T) {
	good := pmodbus.ReadResponse(3, 3, []uint16{7, 7})
	bad := append([]byte(nil), good...)
	bad[3] ^= 0x40
	m := &memLine{answer: func([]byte) ([][]byte, bool) { return [][]byte{bad[:4], bad[4:], {0x00}, good}, false }}
	c := memClient(m)
	if regs, err := c.ReadRegisters(3, 3, 0, 2); err != nil || regs[0] != 7 {
		t.Fatalf("after a bad frame: %v %v", regs, err)
	}
	m.answer = func([]byte) ([][]byte, bool) { return [][]byte{bad}, false }
	_, err := c.ReadRegisters(3, 3, 0, 2)
	if !errors.Is(err, pmodbus.ErrCRC) {
		t.Fatalf("lone bad frame: %v, want a CRC error", err)
	}
	if c.Counters.CRCErrors.Load() != 2 || c.Counters.Timeouts.Load() != 0 {
		t.Errorf("CRC errors %d timeouts %d, want 2 and 0", c.Counters.CRCErrors.Load(), c.Counters.Timeouts.Load())
	}
}

// TestExceptionAndSplitFrames: an exception frame, and an answer that
// arrives a byte at a time.
func TestExceptionAndSplitFrames(t *testing.T) {
	ans := pmodbus.ReadResponse(4, 4, []uint16{1, 2, 3})
	m := &memLine{answer: func(req []byte) ([][]byte, bool) {
		if req[3] == 1 {
			return [][]byte{pmodbus.ExceptionResponse(4, 4, 2)}, false
		}
		var chunks [][]byte
		for i := range ans {
			chunks = append(chunks, ans[i:i+1])
		}
		return chunks, false
	}}
	c := memClient(m)
	var xe *pmodbus.ExceptionError
	if _, err := c.ReadRegisters(4, 4, 1, 3); !errors.As(err, &xe) || xe.Code != 2 {
		t.Fatalf("exception: %v", err)
	}
	if regs, err := c.ReadRegisters(4, 4, 0, 3); err != nil || regs[2] != 3 {
		t.Fatalf("split answer: %v %v", regs, err)
	}
	if c.Counters.Exceptions.Load() != 1 {
		t.Errorf("exceptions %d", c.Counters.Exceptions.Load())
	}
}

// TestLateAnswerDrained: meter 6 answers after the timeout. Before the next
// request the line is drained until silent, so the neighbour's request does
// not collide with the late answer (it did: every neighbour poll after a
// late one failed).
func TestLateAnswerDrained(t *testing.T) {
	m := &memLine{answer: slaves([]byte{6, 7}, 6)}
	c := memClient(m)
	for round := range 5 {
		if _, err := c.ReadRegisters(6, 3, 0, 17); !errors.Is(err, link.ErrTimeout) {
			t.Fatalf("round %d: late meter: %v, want a timeout", round, err)
		}
		if regs, err := c.ReadRegisters(7, 3, 0, 17); err != nil || regs[0] != 7 {
			t.Fatalf("round %d: neighbour after a late answer: %v %v", round, regs, err)
		}
	}
	if m.collided != 0 {
		t.Errorf("%d requests collided with a late answer", m.collided)
	}
	if st := c.Counters.Stray.Load(); st != 5*(5+34) {
		t.Errorf("stray %d, want the 5 late answers' %d bytes", st, 5*(5+34))
	}
}

func mbapFrame(tid uint16, unit byte, pdu ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, tid)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)+1))
	return append(append(b, unit), pdu...)
}

// gateway answers MBAP reads with registers equal to the unit id; the
// answers to the requests numbered in late (counting from 1) come after the
// timeout, and silent makes it stop answering.
type gateway struct {
	n      int
	late   map[int]bool
	silent bool
}

func (g *gateway) answer(req []byte) ([][]byte, bool) {
	g.n++
	if g.silent {
		return nil, false
	}
	tid, unit := binary.BigEndian.Uint16(req), req[6]
	q := binary.BigEndian.Uint16(req[10:])
	pdu := []byte{req[7], byte(2 * q)}
	for range q {
		pdu = append(pdu, 0, unit)
	}
	return [][]byte{mbapFrame(tid, unit, pdu...)}, g.late[g.n]
}

// TestMBAPStaleAnswer: the answer to one request comes late and is in the
// socket when the next request goes out. It is skipped (and counted) by
// its transaction id; every later request gets its own answer. goburrow's
// TCP transport read it as the next answer: "transaction id N-1 does not
// match N", forever.
func TestMBAPStaleAnswer(t *testing.T) {
	g := &gateway{late: map[int]bool{1: true}}
	m := &memLine{answer: g.answer, duplex: true}
	c := newClient(m, true, 0)
	if _, err := c.ReadRegisters(1, 3, 0, 2); !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("late request: %v", err)
	}
	for i := range 5 {
		regs, err := c.ReadRegisters(byte(2+i), 3, 0, 2)
		if err != nil || regs[1] != uint16(2+i) {
			t.Fatalf("request %d after the late answer: %v %v", i+2, regs, err)
		}
	}
	if c.Counters.Stale.Load() != 1 || c.Counters.Timeouts.Load() != 1 {
		t.Errorf("stale %d timeouts %d, want 1 and 1", c.Counters.Stale.Load(), c.Counters.Timeouts.Load())
	}
	// A connection that stops answering is declared failing after
	// failLimit silent requests, so the bus closes and redials it.
	g.silent = true
	var err error
	for range failLimit {
		_, err = c.ReadRegisters(1, 3, 0, 2)
	}
	if !errors.Is(err, link.ErrFailing) || !errors.Is(err, link.ErrTimeout) {
		t.Fatalf("after %d silent requests: %v, want a failing line", failLimit, err)
	}
}

// BenchmarkReadInMemory is the CPU a poll costs above the wire: framing,
// goburrow's packager, the transporter, over the in-memory line.
func BenchmarkReadInMemory(b *testing.B) {
	m := &memLine{answer: slaves([]byte{1})}
	c := memClient(m)
	b.ReportAllocs()
	for range b.N {
		m.written = m.written[:0]
		if _, err := c.ReadRegisters(1, 3, 0, 17); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStillToComeNeverPastTheFrame: for every prefix of an answer, of an
// exception and of an FC06 echo-shaped answer, the read waits for no more
// bytes than that frame still has; otherwise a short frame (an exception
// where a register answer was expected) would be waited out to the
// timeout. Whole frames ask for one byte (the framer decides).
func TestStillToComeNeverPastTheFrame(t *testing.T) {
	req := []byte{7, pmodbus.FuncReadHoldingRegisters, 0, 0, 0, 17, 0, 0}
	want := pmodbus.ResponseLength(req)
	frames := map[string][]byte{
		"answer":    pmodbus.ReadResponse(7, pmodbus.FuncReadHoldingRegisters, make([]uint16, 17)),
		"exception": pmodbus.ExceptionResponse(7, pmodbus.FuncReadHoldingRegisters, 2),
	}
	for name, f := range frames {
		for k := 0; k < len(f); k++ {
			got := stillToCome(req, f[:k], want)
			if got < 1 || got > len(f)-k {
				t.Errorf("%s, %d of %d bytes in: waits for %d more", name, k, len(f), got)
			}
		}
	}
	if got := stillToCome(req, nil, want); got != 5 {
		t.Errorf("nothing in: %d, want 5 (the shortest frame)", got)
	}
	if got := stillToCome(req, frames["answer"][:5], want); got != want-5 {
		t.Errorf("answer begun: %d, want the rest, %d", got, want-5)
	}
	if got := stillToCome(req, []byte{9, 9}, want); got != 1 {
		t.Errorf("noise: %d, want 1", got)
	}
	// A one-register FC03 answer is 7 bytes, an exception 5: below
	// that the shortest frame still bounds the wait.
	req1 := []byte{7, pmodbus.FuncReadHoldingRegisters, 0, 0, 0, 1, 0, 0}
	if got := stillToCome(req1, nil, pmodbus.ResponseLength(req1)); got != 5 {
		t.Errorf("one register, nothing in: %d, want 5", got)
	}
}

// FuzzTransporterEndless: whatever answers a request, then bytes repeated
// for ever (a babbler, a stuck slave), the transporter ends every exchange
// having read at most its byte cap, reports a line
// that never goes quiet as line noise, and reads cleanly once it is quiet.
func FuzzTransporterEndless(f *testing.F) {
	good := pmodbus.ReadResponse(1, pmodbus.FuncReadHoldingRegisters, make([]uint16, 17))
	f.Add(good, []byte{0x00})
	f.Add([]byte{}, good)
	f.Add(good[:10], []byte{0x01, 0x03})
	f.Add(make([]byte, 5000), []byte{0x01, 0x83, 0x02})
	f.Fuzz(func(t *testing.T, answer, endless []byte) {
		if len(endless) == 0 {
			endless = []byte{0}
		}
		first := true
		m := &memLine{answer: func(req []byte) ([][]byte, bool) {
			if first {
				first = false
				return [][]byte{answer}, false
			}
			return slaves([]byte{1})(req)
		}}
		c := memClient(m)
		m.endless = endless
		regs, err := c.ReadRegisters(1, pmodbus.FuncReadHoldingRegisters, 0, 17)
		if err == nil && len(regs) != 17 {
			t.Fatalf("%d registers", len(regs))
		}
		_, err2 := c.ReadRegisters(1, pmodbus.FuncReadHoldingRegisters, 0, 17)
		want := 5 + 2*17
		if capped := 2 * (2*(4*want+256) + 2*64 + len(answer)); m.read > capped {
			t.Fatalf("read %d endless bytes in two exchanges, cap %d", m.read, capped)
		}
		if err2 != nil && link.Classify(err2) == link.FaultStopped {
			t.Fatalf("second exchange: %v", err2)
		}
		m.endless, m.queue = nil, nil
		if _, err := c.ReadRegisters(1, pmodbus.FuncReadHoldingRegisters, 0, 17); err != nil {
			// One exchange may go to the drain of a failed one.
			if _, err := c.ReadRegisters(1, pmodbus.FuncReadHoldingRegisters, 0, 17); err != nil {
				t.Fatalf("clean read after it: %v", err)
			}
		}
	})
}
