package mbus

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"tidegate/drivers/link"
	pmbus "tidegate/protocol/mbus"
)

// fakeMeter is a minimal M-Bus slave for these tests: it answers SND_NKE,
// REQ_UD2 (with FCB tracking and multi-telegram) and selections with
// wildcards. It serves the in-memory line and the pty alike.
type fakeMeter struct {
	primary   byte
	sec       Secondary
	telegrams [][]byte // records after the 12-byte header, one per telegram
	selected  bool
	cur       int  // telegram last sent
	restarted bool // SND_NKE seen: the next new telegram is the first
	lastFCB   int  // -1 unknown
	access    byte // access number: counts new telegrams, not repeats
	fcbs      []bool
	// strict: SND_NKE clears the FCB (EN 13757-2), so the first REQ_UD2
	// after it must have FCB set; one with FCB clear is a repeat and gets
	// the previous telegram again. Otherwise any FCB is new after SND_NKE.
	strict bool
	// faults
	wrongAddr, badSum, silent bool
}

func (m *fakeMeter) header() []byte {
	id := m.sec.ID
	var h [12]byte
	for i := range 4 {
		d := id % 100
		id /= 100
		h[i] = byte(d/10)<<4 | byte(d%10)
	}
	h[4], h[5], h[6], h[7] = byte(m.sec.Manufacturer), byte(m.sec.Manufacturer>>8), m.sec.Version, m.sec.Medium
	h[8] = byte(m.cur)
	h[10] = m.access // signature bytes: free for the tests
	return h[:]
}

func (m *fakeMeter) reset() {
	m.restarted, m.lastFCB = true, -1
	if m.strict {
		m.lastFCB = 0
	}
}

// respond returns the meter's answer to one request frame, nil for none.
func (m *fakeMeter) respond(f pmbus.Frame) []byte {
	if m.silent {
		return nil
	}
	switch {
	case f.Kind == pmbus.KindShort && f.C.IsSndNke():
		if f.Address == 0xFD {
			if !m.selected {
				return nil
			}
			m.selected = false
			m.reset()
			return []byte{pmbus.Ack}
		}
		if f.Address == m.primary {
			m.reset()
			return []byte{pmbus.Ack}
		}
	case f.Kind == pmbus.KindShort && f.C.IsReqUd2():
		if f.Address != m.primary && !(f.Address == 0xFD && m.selected) {
			return nil
		}
		fcb := 0
		if f.C.FCB() {
			fcb = 1
		}
		m.fcbs = append(m.fcbs, f.C.FCB())
		if m.lastFCB < 0 || fcb != m.lastFCB {
			switch {
			case m.restarted || len(m.telegrams) == 0:
				m.cur, m.restarted = 0, false
			default:
				m.cur = (m.cur + 1) % len(m.telegrams)
			}
			m.access++
		}
		m.lastFCB = fcb
		var records []byte
		if len(m.telegrams) > 0 {
			records = m.telegrams[m.cur]
		}
		data := append(m.header(), records...)
		addr := f.Address
		if addr == 0xFD {
			addr = m.primary
		}
		if m.wrongAddr {
			addr++
		}
		out, _ := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CRspUd), Address: addr, CI: 0x72, Data: data})
		if m.badSum {
			out[len(out)-2]++
		}
		return out
	case f.Kind == pmbus.KindLong && f.Address == 0xFD && f.CI == 0x52 && len(f.Data) == 8:
		var p Pattern
		b := f.Data
		for i := range 4 {
			p[6-2*i], p[7-2*i] = b[i]>>4, b[i]&0xF
		}
		p[10], p[11], p[8], p[9] = b[4]>>4, b[4]&0xF, b[5]>>4, b[5]&0xF
		p[12], p[13], p[14], p[15] = b[6]>>4, b[6]&0xF, b[7]>>4, b[7]&0xF
		m.selected = p.Matches(m.sec)
		if m.selected {
			return []byte{pmbus.Ack}
		}
	}
	return nil
}

// busAnswer is what the master hears when every meter sees f: nothing,
// one answer, or several at once, which on RS-485 AND together (dominant
// zeros). Two E5s sent together either AND into one E5 (mergeAcks, as
// metersim's do when their timing matches) or smear into a second byte.
func busAnswer(meters []*fakeMeter, f pmbus.Frame, mergeAcks bool) []byte {
	var replies [][]byte
	for _, m := range meters {
		if r := m.respond(f); r != nil {
			replies = append(replies, r)
		}
	}
	if len(replies) == 0 {
		return nil
	}
	out := append([]byte(nil), replies[0]...)
	for _, r := range replies[1:] {
		for i := range min(len(out), len(r)) {
			out[i] &= r[i]
		}
		if len(r) > len(out) {
			out = append(out, r[len(out):]...)
		}
		if len(out) == 1 && !mergeAcks {
			out = append(out, 0xE5&0x7F) // a second start bit smeared over the stop bit
		}
	}
	return out
}

// fakeBus is a pty with fake meters on the far end. With timed set it
// holds each answer back for the request's and the answer's wire time plus
// a turnaround, as a real line would.
type fakeBus struct {
	cfg        link.Config
	master     *os.File
	slave      *os.File
	timed      bool
	turnaround time.Duration
	echo       bool   // converter echoes every request
	noise      []byte // written before every answer

	mu       sync.Mutex
	meters   []*fakeMeter
	requests int
}

func newFakeBus(t testing.TB, baud int, meters ...*fakeMeter) *fakeBus {
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	b := &fakeBus{master: os.NewFile(uintptr(fd), "ptmx"), slave: s, meters: meters, turnaround: 10 * time.Millisecond,
		cfg: link.Config{Device: s.Name(), Baud: baud, Parity: "E"}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.serve(ctx) }()
	t.Cleanup(func() { cancel(); b.master.Close(); <-done; b.slave.Close() })
	return b
}

func (b *fakeBus) wire(n int) time.Duration { return time.Duration(n) * b.cfg.CharTime() }

func (b *fakeBus) serve(ctx context.Context) {
	var frame []byte
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		_ = b.master.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := b.master.Read(buf)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n == 0 {
			frame = frame[:0]
			continue
		}
		frame = append(frame, buf[:n]...)
		for len(frame) > 0 {
			f, used, err := pmbus.Decode(frame)
			if errors.Is(err, pmbus.ErrIncomplete) {
				break
			}
			if err != nil {
				frame = frame[1:]
				continue
			}
			req := append([]byte(nil), frame[:used]...)
			frame = frame[used:]
			b.answer(f, req)
		}
	}
}

func (b *fakeBus) answer(f pmbus.Frame, req []byte) {
	b.mu.Lock()
	b.requests++
	out := busAnswer(b.meters, f, false)
	echo, noise := b.echo, b.noise
	b.mu.Unlock()
	if echo {
		b.master.Write(req)
	}
	if len(out) == 0 {
		return
	}
	if b.timed {
		time.Sleep(b.wire(len(req)) + b.turnaround + b.wire(len(out)))
	}
	b.master.Write(append(append([]byte(nil), noise...), out...))
}

func (b *fakeBus) open(t testing.TB, opt Options) *Master {
	l, err := link.Open(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return NewMaster(l, opt, nil)
}
