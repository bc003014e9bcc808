package mbus

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"tidegate/drivers/link"
	pmbus "tidegate/protocol/mbus"
)

// event is one thing a read of the in-memory line meets: bytes that have
// arrived, or a silence that ends the read as a timeout.
type event struct {
	data    []byte
	silence bool
	// late: the bytes come after the window of the request they answer,
	// while the master is past its Flush: only a read meets them.
	late bool
}

func got(b ...byte) event { return event{data: b} }

var silence = event{silence: true}

// memLine is a deterministic in-memory M-Bus line. Every request written
// is handed to respond, whose events are what the reads that follow meet,
// in order; a read with nothing left meets silence. Deadlines are ignored
// and nothing sleeps: a timeout fires exactly when the script says so, so
// a test over it cannot be made to fail by a busy machine.
type memLine struct {
	cfg     link.Config
	respond func(req []byte) []event
	pending []event

	requests [][]byte
	gaps     []time.Duration // silences asked for by WaitGap, in order
	flushed  int             // bytes Flush dropped
	timeouts int             // reads that met silence
	// budgets: how long each read was given (time until its deadline
	// when it began): only ever less than what the master allowed.
	budgets  []time.Duration
	writeErr error // returned by Write once set
	arrive   bool  // WaitGap lets the bytes a real line would bring meanwhile arrive
	// interrupt: the next writes deliver the frame, then report what a
	// tcdrain cut short by a signal reports.
	interrupt int
	// endless: once the script is out, the line repeats these bytes for
	// ever instead of falling silent (a babbler, a stuck transmitter);
	// read counts the bytes the master took.
	endless []byte
	at      int
	read    int
}

func newMemLine(baud int, respond func(req []byte) []event) *memLine {
	return &memLine{cfg: link.Config{Baud: baud, DataBits: 8, Parity: "E", StopBits: 1}, respond: respond}
}

func (l *memLine) Config() link.Config { return l.cfg }

// WaitGap records the wait. With arrive set, the bytes of the data events
// at the head that a real line would deliver meanwhile (a character per
// character time) are joined into one event, as they would sit in the
// kernel's buffer when the master wakes.
func (l *memLine) WaitGap(gap time.Duration) {
	l.gaps = append(l.gaps, gap)
	if !l.arrive || len(l.pending) == 0 || l.pending[0].silence {
		return
	}
	k := int(gap / l.cfg.CharTime())
	joined := append([]byte(nil), l.pending[0].data...)
	i := 1
	for ; i < len(l.pending) && !l.pending[i].silence && len(joined) < k; i++ {
		joined = append(joined, l.pending[i].data...)
	}
	l.pending = append([]event{{data: joined}}, l.pending[i:]...)
}

// Flush drops the bytes that have arrived: those before the next silence
// or late event.
func (l *memLine) Flush() (int, error) {
	n := 0
	for len(l.pending) > 0 && !l.pending[0].silence && !l.pending[0].late {
		n += len(l.pending[0].data)
		l.pending = l.pending[1:]
	}
	l.flushed += n
	return n, nil
}

func (l *memLine) Write(b []byte) error {
	if l.writeErr != nil {
		return l.writeErr
	}
	req := append([]byte(nil), b...)
	l.requests = append(l.requests, req)
	if l.respond != nil {
		l.pending = append(l.pending, l.respond(req)...)
	}
	if l.interrupt > 0 {
		l.interrupt--
		return syscall.EINTR
	}
	return nil
}

func (l *memLine) ReadSome(buf []byte, deadline time.Time) (int, error) {
	l.budgets = append(l.budgets, time.Until(deadline))
	if len(l.pending) == 0 && len(l.endless) > 0 {
		n := min(len(buf), 64)
		for i := range n {
			buf[i] = l.endless[(l.at+i)%len(l.endless)]
		}
		l.at += n
		l.read += n
		return n, nil
	}
	if len(l.pending) == 0 || l.pending[0].silence {
		if len(l.pending) > 0 {
			l.pending = l.pending[1:]
		}
		l.timeouts++
		return 0, link.ErrTimeout
	}
	n := copy(buf, l.pending[0].data)
	if n < len(l.pending[0].data) {
		l.pending[0].data = l.pending[0].data[n:]
	} else {
		l.pending = l.pending[1:]
	}
	return n, nil
}

// step is one exchange of a script: the request the master must send and
// what the line then gives it.
type step struct {
	want   []byte
	answer []event
}

// scripted is a responder that checks every request against the script
// and fails the test on the first that differs or is one too many.
func scripted(t *testing.T, steps ...step) func([]byte) []event {
	i := 0
	t.Cleanup(func() {
		if !t.Failed() && i != len(steps) {
			t.Errorf("script: %d of %d requests sent", i, len(steps))
		}
	})
	return func(req []byte) []event {
		if i >= len(steps) {
			t.Errorf("request % X beyond the script", req)
			return nil
		}
		s := steps[i]
		i++
		if !bytes.Equal(req, s.want) {
			t.Errorf("request %d: % X, want % X", i, req, s.want)
		}
		return s.answer
	}
}

// memBus is a responder of fake meters sharing one line, with faults the
// test can switch per request: the meters see every request; what they
// answer (merged as RS-485 merges it) is delivered in one piece, a byte at
// a time, late (after a timeout), or not at all.
type memBus struct {
	meters    []*fakeMeter
	mergeAcks bool
	echo      bool
	split     bool                                 // deliver answers one byte per read
	fault     func(n int, req, ans []byte) []event // n counts requests from 1; nil: as is
	n         int
}

func (b *memBus) respond(req []byte) []event {
	b.n++
	f, used, err := pmbus.Decode(req)
	var ans []byte
	if err == nil && used == len(req) {
		ans = busAnswer(b.meters, f, b.mergeAcks)
	}
	var out []event
	if b.echo {
		out = append(out, event{data: req})
	}
	if b.fault != nil {
		return append(out, b.fault(b.n, req, ans)...)
	}
	if ans == nil {
		return out
	}
	if b.split {
		for _, c := range ans {
			out = append(out, got(c))
		}
		return out
	}
	return append(out, event{data: ans})
}

func memMaster(t *testing.T, b *memBus, opt Options) (*Master, *memLine) {
	l := newMemLine(2400, b.respond)
	return NewMaster(l, opt, nil), l
}

func reqUD2(fcb bool, addr byte) []byte {
	return pmbus.ShortFrame(byte(pmbus.CField(pmbus.CReqUd2).WithFCB(fcb)), addr)
}

func sndNke(addr byte) []byte { return pmbus.ShortFrame(pmbus.CSndNke, addr) }

func rspUD(t testing.TB, addr byte, records ...byte) []byte {
	data := append(make([]byte, 12), records...)
	out, err := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CRspUd), Address: addr, CI: 0x72, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func selectFrame(t testing.TB, p Pattern) []byte {
	data := p.Bytes()
	out, err := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CSndUd), Address: pmbus.AddrNetworkLayer, CI: 0x52, Data: data[:]})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var errLine = errors.New("line gone")

// volumeRecord is DIF 04 VIF 13 (volume, litres), 4 bytes: 12.345 m³.
var volumeRecord = []byte{0x04, 0x13, 0x39, 0x30, 0x00, 0x00}

// WriteUntil: an in-memory line takes a frame at once.
func (l *memLine) WriteUntil(_ context.Context, b []byte, _ time.Time) error { return l.Write(b) }
