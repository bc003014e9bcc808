package cjt188

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"tidegate/drivers/link"
	p "tidegate/protocol/cjt188"
)

// Line is what the master needs of a line; *link.Line is one, and tests
// use an in-memory line.
type Line interface {
	Config() link.Config
	WaitGap(gap time.Duration)
	Flush() (int, error)
	WriteUntil(ctx context.Context, b []byte, deadline time.Time) error
	ReadSome(buf []byte, deadline time.Time) (int, error)
	Close() error
}

// Options tune a master for its bus. The zero value sends no preamble and
// takes the timeouts from the baud rate.
type Options struct {
	// Preamble is the number of FE wake-up bytes before each request, 0..4.
	Preamble int
	// Timeout is how long a meter may take to start answering; 0 takes
	// AnswerTimeout from the baud rate.
	Timeout time.Duration
	// Guard is the silence kept before each request and the stall that
	// ends an answer; 0 takes Guard from the baud rate.
	Guard time.Duration
}

// Counters are a master's running totals, safe to read while it runs.
type Counters struct {
	Requests   atomic.Int64
	Timeouts   atomic.Int64
	Garbled    atomic.Int64 // answers that failed checksum, end byte or length
	Truncated  atomic.Int64
	Foreign    atomic.Int64 // answers from another address, or with another SER (late)
	Refused    atomic.Int64 // error replies (D6)
	Collisions atomic.Int64 // several meters at once
	Echoes     atomic.Int64 // the request coming back from the converter
	Stray      atomic.Int64 // bytes dropped while looking for an answer
}

// AnswerTimeout is how long a meter may take to start its answer. CJ/T 188
// rides on the M-Bus physical layer and its meters are as slow: EN 13757-2's
// 11 + 330 bit times, and 150 ms more than its 50 ms allowance, since many
// CJ/T 188 meters wake their electronics for a request.
func AnswerTimeout(c link.Config) time.Duration {
	return 341*bitTime(c) + 200*time.Millisecond
}

// Guard is the silence before a request and the stall that ends an answer:
// 11 bit times plus 50 ms, as on M-Bus.
func Guard(c link.Config) time.Duration { return 11*bitTime(c) + 50*time.Millisecond }

func bitTime(c link.Config) time.Duration {
	baud := c.Baud
	if baud <= 0 {
		baud = 2400
	}
	return time.Second / time.Duration(baud)
}

// Meter is one configured meter.
type Meter struct {
	ID      string
	Address p.Address
	Type    p.MeterType  // 0: cold water (10)
	Order   p.DIOrder    // the order requests are sent in (replies: either)
	Clock   p.ClockOrder // how its clock is read
	Layout  p.Layout     // its status bits (zero: the common layout)
}

func (m Meter) typ() p.MeterType {
	if m.Type == 0 {
		return p.TypeColdWater
	}
	return m.Type
}

// Master talks CJ/T 188 on one line. Use it from one goroutine (the bus's).
type Master struct {
	line Line
	opt  Options
	c    *Counters
	ser  byte
	buf  []byte
	rd   [256]byte
}

// NewMaster prepares a master; c may be nil.
func NewMaster(l Line, opt Options, c *Counters) *Master {
	if opt.Timeout <= 0 {
		opt.Timeout = AnswerTimeout(l.Config())
	}
	if opt.Guard <= 0 {
		opt.Guard = Guard(l.Config())
	}
	opt.Preamble = min(max(opt.Preamble, 0), p.MaxPreamble)
	if c == nil {
		c = &Counters{}
	}
	return &Master{line: l, opt: opt, c: c}
}

// Counters returns the master's counters.
func (m *Master) Counters() *Counters { return m.c }

// Options returns the options in effect.
func (m *Master) Options() Options { return m.opt }

// Close closes the line.
func (m *Master) Close() error { return m.line.Close() }

func (m *Master) wire(n int) time.Duration { return time.Duration(n) * m.line.Config().CharTime() }

// Exchange is one answered request: the reply and its bytes as received.
type Exchange struct {
	Reply p.Message
	Raw   []byte
}

// Transact sends req (SER set by the master) and returns the meter's reply,
// checked against the request: function, address, DI (in either order),
// SER. A reply with another SER is a late answer to an earlier request and
// is skipped; an exact echo of the request is skipped too. expect is the
// reply's data length, for the time the answer may take on the wire.
func (m *Master) Transact(ctx context.Context, req p.Frame, expect int) (Exchange, error) {
	if err := ctx.Err(); err != nil {
		return Exchange{}, link.NotSent(err)
	}
	m.ser++
	req.Data = append([]byte(nil), req.Data...)
	if len(req.Data) >= 3 {
		req.Data[2] = m.ser
	}
	req.Preamble = m.opt.Preamble
	out, err := p.Encode(req)
	if err != nil {
		return Exchange{}, err
	}
	reqMsg, err := p.Parse(req)
	if err != nil {
		return Exchange{}, err
	}
	// The whole transaction, whatever the line does: the request's wire
	// time, the answer timeout, the longest legal frame's wire time and two
	// guards; at most the echo, two whole frames (a late answer, then
	// ours) and a margin are read. The write is bounded by it too.
	tx := link.NewBudget(ctx, m.opt.Guard+m.wire(len(out))+m.opt.Timeout+m.wire(maxFrame)+2*m.opt.Guard,
		len(out)+2*maxFrame+noiseMargin, m.opt.Guard, requestName(reqMsg))
	if err := m.send(ctx, out, tx.Deadline()); err != nil {
		return Exchange{}, err
	}
	// Whole answer: its start within the timeout after the request has
	// left (Drain returns at once on a pty and some USB adapters, so the
	// request's wire time is added), then its own wire time with preamble.
	// Past it the answer goes on only while the line keeps talking.
	deadline := tx.Until(time.Now().Add(m.wire(len(out)) + m.opt.Timeout + m.wire(p.MinFrame+p.MaxPreamble+expect)))
	var problem error
	for {
		f, n, derr := m.frame()
		switch {
		case derr == nil:
			raw := append([]byte(nil), m.buf[:n]...)
			m.c.Stray.Add(int64(f.Skipped))
			m.buf = append(m.buf[:0], m.buf[n:]...)
			f.Data = append([]byte(nil), f.Data...)
			msg, perr := p.Parse(f)
			if perr != nil {
				problem = fmt.Errorf("%w: %w", ErrGarbled, perr)
				continue
			}
			if !f.Control.IsReply() {
				m.c.Echoes.Add(1) // our request back from the converter
				continue
			}
			if cerr := p.CheckReply(reqMsg, msg); cerr != nil {
				switch {
				case errors.Is(cerr, p.ErrSER), errors.Is(cerr, p.ErrAddress):
					m.c.Foreign.Add(1)
					problem = fmt.Errorf("%w: %w", ErrForeign, cerr)
					continue // a late answer or another meter: the right one may follow
				case errors.Is(cerr, p.ErrMeterError):
					m.c.Refused.Add(1)
					m.drainTrailing()
					return Exchange{Reply: msg, Raw: raw}, fmt.Errorf("%w: %w", ErrRefused, cerr)
				}
				m.c.Garbled.Add(1)
				return Exchange{}, fmt.Errorf("%w: %w", ErrGarbled, cerr)
			}
			m.drainTrailing()
			return Exchange{Reply: msg, Raw: raw}, nil
		case errors.Is(derr, errMore):
		default:
			// Bytes that are no frame (frame dropped them): go on looking,
			// remembering what was wrong.
			problem = fmt.Errorf("%w: %w", ErrGarbled, derr)
			continue
		}
		d := deadline
		switch {
		case problem != nil && !errors.Is(problem, ErrForeign) && len(m.buf) == 0:
			// Garbage came and the line is quiet again: wait only for a
			// stall. (After a late answer the right one may still come.)
			d = tx.Until(time.Now().Add(m.opt.Guard))
		case tx.Bytes() > 0:
			// Something is coming: past the answer's time only while the
			// line keeps talking, and never past the budget.
			d = tx.Until(later(deadline, time.Now().Add(m.opt.Guard)))
		}
		k, rerr := m.line.ReadSome(m.rd[:], d)
		m.buf = append(m.buf, m.rd[:k]...)
		if cerr := tx.Count(m.rd[:k]); cerr != nil {
			m.drainTrailing()
			return Exchange{}, cerr
		}
		if rerr != nil && !errors.Is(rerr, link.ErrTimeout) {
			return Exchange{}, fmt.Errorf("read: %w", rerr)
		}
		if err := ctx.Err(); err != nil {
			m.drainTrailing()
			return Exchange{}, fmt.Errorf("%w: %w", ErrTimeout, err) // sent: its answer was not waited for
		}
		if k == 0 {
			if _, noise := tx.Over(); noise != nil {
				m.drainTrailing()
				return Exchange{}, noise
			}
			break
		}
	}
	left := len(m.buf)
	m.c.Stray.Add(int64(left))
	m.buf = m.buf[:0]
	switch {
	case problem != nil && errors.Is(problem, ErrForeign):
		return Exchange{}, problem
	case problem != nil:
		m.c.Garbled.Add(1)
		return Exchange{}, problem
	case left > 0:
		m.c.Truncated.Add(1)
		return Exchange{}, fmt.Errorf("%w: %d bytes and no complete frame", ErrTruncated, left)
	}
	m.c.Timeouts.Add(1)
	return Exchange{}, ErrTimeout
}

// maxFrame is the longest legal frame with its preamble.
const maxFrame = p.MaxPreamble + p.MinFrame + p.MaxData

// noiseMargin is added to every byte cap: stray bytes, RSSI suffixes.
const noiseMargin = 64

// headerLen is a frame's bytes up to and including L: 68 T A0..A6 C L.
const headerLen = 11

// errMore: the buffer holds no complete frame yet.
var errMore = errors.New("cjt188: more bytes needed")

// frame takes the next frame from the buffer in one pass: bytes before the
// first 68 go (but for up to four FE of preamble), and the candidate at
// that 68 is decoded once as many bytes are in as its L announces. One that
// does not decode is dropped through its 68, with the decode error. So the
// buffer holds at most one frame and a read, and each byte is looked at
// as a start once (the buffer used to keep every byte until a 68 and be
// rescanned whole on every read).
func (m *Master) frame() (p.Frame, int, error) {
	i := bytes.IndexByte(m.buf, p.Start)
	if i < 0 {
		keep := 0
		for keep < p.MaxPreamble && keep < len(m.buf) && m.buf[len(m.buf)-1-keep] == p.Preamble {
			keep++
		}
		m.discard(len(m.buf) - keep)
		return p.Frame{}, 0, errMore
	}
	pre := 0
	for pre < p.MaxPreamble && i-1-pre >= 0 && m.buf[i-1-pre] == p.Preamble {
		pre++
	}
	m.discard(i - pre)
	if len(m.buf) < pre+headerLen {
		return p.Frame{}, 0, errMore
	}
	total := pre + headerLen + int(m.buf[pre+headerLen-1]) + 2
	if len(m.buf) < total {
		return p.Frame{}, 0, errMore
	}
	f, n, err := p.Decode(m.buf[:total])
	if err == nil {
		return f, n, nil
	}
	m.discard(pre + 1)
	if errors.Is(err, p.ErrIncomplete) || errors.Is(err, p.ErrNoStart) {
		err = fmt.Errorf("%w: %d bytes announced at 68 are no frame", p.ErrChecksum, total-pre)
	}
	return p.Frame{}, 0, err
}

// discard drops the buffer's first n bytes as stray.
func (m *Master) discard(n int) {
	if n <= 0 {
		return
	}
	m.c.Stray.Add(int64(n))
	m.buf = append(m.buf[:0], m.buf[n:]...)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// requestName names a request for a noise report.
func requestName(req p.Message) string {
	return fmt.Sprintf("request %s to %s", req.DI, req.Address)
}

// drainTrailing drops what is left after a good frame (RSSI bytes of a
// radio module): the next request flushes the line anyway.
func (m *Master) drainTrailing() {
	m.c.Stray.Add(int64(len(m.buf)))
	m.buf = m.buf[:0]
}

// send keeps the guard silence, drops stale input and writes req; a
// request whose context ended before the line was free is not sent
// (link.ErrNotSent). A converter that does not take the frame by deadline
// (the transaction's) or before ctx ends fails the line.
func (m *Master) send(ctx context.Context, req []byte, deadline time.Time) error {
	m.c.Requests.Add(1)
	m.line.WaitGap(m.opt.Guard)
	if n, err := m.line.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	} else if n > 0 {
		m.c.Stray.Add(int64(n))
	}
	m.buf = m.buf[:0]
	if err := ctx.Err(); err != nil {
		return link.NotSent(err)
	}
	if err := m.line.WriteUntil(ctx, req, deadline); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// ReadData reads one data identifier of a meter.
func (m *Master) ReadData(ctx context.Context, mt Meter, di p.DI) (Exchange, error) {
	expect := 3
	switch {
	case di == p.DICurrent:
		expect = p.CurrentLen
	case di == p.DIClock:
		expect = 3 + 7
	case di >= p.DIHistory1 && di <= p.DIHistory12:
		expect = 3 + 5
	}
	return m.Transact(ctx, p.ReadData(mt.typ(), mt.Address, di, mt.Order, 0), expect)
}

// Current reads 901F and decodes it.
func (m *Master) Current(ctx context.Context, mt Meter) (p.Current, Exchange, error) {
	ex, err := m.ReadData(ctx, mt, p.DICurrent)
	if err != nil {
		return p.Current{}, ex, err
	}
	c, err := p.DecodeCurrent(ex.Reply.Body, mt.Clock)
	if err != nil {
		m.c.Garbled.Add(1)
		return p.Current{}, ex, fmt.Errorf("%w: 901F: %w", ErrGarbled, err)
	}
	return c, ex, nil
}

// Valve sends A017 (open or close) and returns the status the meter
// answers with, if it sends one (ok false otherwise).
func (m *Master) Valve(ctx context.Context, mt Meter, open bool) (st p.Status, ok bool, err error) {
	action := p.ValveClose
	if open {
		action = p.ValveOpen
	}
	ex, err := m.Transact(ctx, p.WriteValve(mt.typ(), mt.Address, mt.Order, 0, action), 3+2)
	if err != nil {
		return p.Status{}, false, err
	}
	st, ok = p.DecodeValveReply(ex.Reply.Body)
	return st, ok, nil
}

// Found is the outcome of a broadcast read-address.
type Found struct {
	// Address is the one meter that answered, valid when Several is false
	// and Count is 1.
	Address p.Address
	Type    p.MeterType
	Count   int // 0: nobody answered; 1: one meter
	// Several: more than one meter answered at once (garbled bytes, or
	// more than one frame): no address can be trusted. The technician
	// enters the addresses printed on the meters, or connects one at a time.
	Several bool
	Raw     []byte
}

// ReadAddress sends the broadcast read-address (810A, type AA) and listens
// until the line falls silent: with one meter on the line its answer gives
// the address; several answering at once garble each other, and that is
// reported as such, never taken for a meter.
func (m *Master) ReadAddress(ctx context.Context, order p.DIOrder) (Found, error) {
	if err := ctx.Err(); err != nil {
		return Found{}, link.NotSent(err)
	}
	m.ser++
	req := p.ReadAddress(order, m.ser)
	req.Preamble = m.opt.Preamble
	out, _ := p.Encode(req)
	tx := link.NewBudget(ctx, m.opt.Guard+m.wire(len(out))+m.opt.Timeout+m.wire(maxFrame)+2*m.opt.Guard,
		len(out)+2*maxFrame+noiseMargin, m.opt.Guard, "broadcast read-address")
	if err := m.send(ctx, out, tx.Deadline()); err != nil {
		return Found{}, err
	}
	deadline := tx.Until(time.Now().Add(m.wire(len(out)) + m.opt.Timeout + m.wire(p.MinFrame+p.MaxPreamble+3)))
	for {
		d := deadline
		if len(m.buf) > 0 {
			d = tx.Until(time.Now().Add(m.opt.Guard))
		}
		k, err := m.line.ReadSome(m.rd[:], d)
		m.buf = append(m.buf, m.rd[:k]...)
		if cerr := tx.Count(m.rd[:k]); cerr != nil {
			m.drainTrailing()
			return Found{}, cerr
		}
		if err != nil && !errors.Is(err, link.ErrTimeout) {
			return Found{}, fmt.Errorf("read: %w", err)
		}
		if err := ctx.Err(); err != nil {
			m.drainTrailing()
			return Found{}, err
		}
		if k == 0 {
			if _, noise := tx.Over(); noise != nil {
				m.drainTrailing()
				return Found{}, noise
			}
			break
		}
	}
	got := append([]byte(nil), m.buf...)
	m.buf = m.buf[:0]
	res := Found{Raw: got}
	if len(got) == 0 {
		m.c.Timeouts.Add(1)
		return res, nil
	}
	rest := got
	skipped := 0
	for len(rest) > 0 {
		f, n, err := p.Decode(rest)
		if err != nil {
			break
		}
		rest = rest[n:]
		skipped += f.Skipped
		if !f.Control.IsReply() {
			m.c.Echoes.Add(1)
			continue
		}
		if f.Control.Function() == p.FuncReadAddress && !f.Control.IsError() && f.Address.Valid() && !f.Address.IsBroadcast() {
			if res.Count == 0 {
				res.Address, res.Type = f.Address, f.Type
			}
			res.Count++
		}
	}
	// Anything but exactly one clean answer means several meters talked:
	// two frames, garbled bytes, more around the frame than the odd stray
	// byte before 68 or a radio module's two RSSI bytes after 16.
	if res.Count != 1 || skipped > 3 || len(rest) > 2 {
		res.Several, res.Count = true, max(res.Count, 2)
		m.c.Collisions.Add(1)
	}
	return res, nil
}
