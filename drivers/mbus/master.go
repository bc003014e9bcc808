package mbus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"tidegate/drivers/link"
	pmbus "tidegate/protocol/mbus"
)

// Options tune a master for its bus. The zero value follows EN 13757-2.
type Options struct {
	// Timeout is how long a slave may take to start answering; 0 takes
	// AnswerTimeout from the baud rate. Real meters are often slower.
	Timeout time.Duration
	// Echo says the level converter echoes every request back: the echo is
	// then required and checked. Without it an exact echo is still dropped.
	Echo bool
	// Idle is the silence kept before each request, counted from the last
	// byte on the wire; 0 takes Idle from the baud rate (11 bit times, the
	// standard's pause between frames).
	Idle time.Duration
	// Guard is the stall that ends an answer (a frame that pauses this long
	// is over, a selection's answers are all in once the line has been
	// quiet this long) and how long the line is drained of late bytes after
	// a failed transaction; 0 takes Guard from the baud rate (11 bit times
	// + 50 ms).
	Guard time.Duration
	// MaxTelegrams caps a multi-telegram read ("more records follow"), so a
	// meter that always says more cannot hold the bus; default 8.
	MaxTelegrams int
}

// Counters are a master's running totals, safe to read while it runs.
type Counters struct {
	Requests     atomic.Int64
	Timeouts     atomic.Int64
	Checksum     atomic.Int64 // garbled or checksum-failed answers
	Truncated    atomic.Int64
	WrongAddress atomic.Int64 // answers whose A-field or id is not the polled one
	Collisions   atomic.Int64 // several slaves answered at once
	Echoes       atomic.Int64 // request echoes dropped
	Stray        atomic.Int64 // bytes dropped while looking for an answer
	Selects      atomic.Int64 // secondary selections sent
	// Late counts probes that drew nothing in their window but whose
	// answer came during the drain after it: the line is slower than the
	// window allows.
	Late atomic.Int64
	// Retries counts scan selections repeated with a longer window after
	// a late answer.
	Retries atomic.Int64
	// Phantoms counts ids a scan read from a telegram that an exact
	// selection of that id then did not confirm (merged answers).
	Phantoms atomic.Int64
}

// Telegram is one answer (RSP_UD) of a meter.
type Telegram struct {
	Address byte
	C       pmbus.CField
	CI      byte
	Data    []byte // user data after CI (a copy)
	Raw     []byte // the whole frame as received
}

// MoreFollow reports whether the meter announced another telegram (DIF 1F).
// A telegram that does not decode ends a multi-telegram read rather than
// prolonging it.
func (t Telegram) MoreFollow() bool {
	app, _ := pmbus.ParseApplication(t.CI, t.Data)
	return app.MoreRecordsFollow
}

// Master talks M-Bus on one line. Use it from one goroutine (the bus's).
type Master struct {
	line  Line
	opt   Options
	c     *Counters
	guard time.Duration
	// fcb is the next FCB per meter: by primary address for meters read
	// by it, by selection pattern for meters read through 253. A meter
	// absent starts with FCB set, as after SND_NKE.
	fcb map[meterKey]bool
	// selected is the meter a selection singled out (the one 253 now
	// reaches); zero when none or several.
	selected meterKey
	// drain: the last transaction failed, its late bytes may still come.
	drain bool
	// tx bounds the transaction under way (set by send).
	tx  *link.Budget
	buf []byte
	rd  [256]byte
}

// maxFrame is the longest legal M-Bus frame: a long frame of 255 bytes
// between its two headers.
const maxFrame = 255 + 6

// noiseMargin is added to every byte cap: a stray byte or two, an RSSI
// suffix, a collision's garble.
const noiseMargin = 64

// meterKey names a meter by the address form that reaches it.
type meterKey struct {
	primary  int16 // primary address, -1 for a selected meter
	selected Pattern
}

func primaryKey(addr byte) meterKey { return meterKey{primary: int16(addr)} }

func patternKey(p Pattern) meterKey { return meterKey{primary: -1, selected: p} }

// NewMaster prepares a master; c may be nil.
func NewMaster(l Line, opt Options, c *Counters) *Master {
	if opt.Timeout <= 0 {
		opt.Timeout = AnswerTimeout(l.Config())
	}
	if opt.MaxTelegrams <= 0 {
		opt.MaxTelegrams = 8
	}
	if opt.Guard <= 0 {
		opt.Guard = Guard(l.Config())
	}
	if opt.Idle <= 0 {
		opt.Idle = Idle(l.Config())
	}
	if c == nil {
		c = &Counters{}
	}
	return &Master{line: l, opt: opt, c: c, guard: opt.Guard, fcb: map[meterKey]bool{}, buf: make([]byte, 0, 600)}
}

// Counters returns the master's counters.
func (m *Master) Counters() *Counters { return m.c }

// Options returns the options in effect (defaults filled in).
func (m *Master) Options() Options { return m.opt }

// send keeps the silence between frames, drops stale input, writes req and
// removes its echo if the converter sends one. After a failed transaction
// the line is first listened to for the guard time, so that a late answer
// is dropped here rather than taken for the answer to req. It starts the
// transaction's budget (answer window + the longest frame's wire time,
// and a byte cap), which receive keeps to. A request whose context has
// ended by the time the line is free is not sent (link.ErrNotSent).
func (m *Master) send(ctx context.Context, req []byte) error {
	m.c.Requests.Add(1)
	if m.drain {
		m.drain = false
		if _, err := m.drainLate(ctx); err != nil {
			return err
		}
	}
	m.line.WaitGap(m.opt.Idle)
	if n, err := m.line.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	} else if n > 0 {
		m.c.Stray.Add(int64(n))
	}
	if err := ctx.Err(); err != nil {
		return link.NotSent(err)
	}
	m.tx = link.NewBudget(ctx, 2*m.wire(len(req))+m.opt.Timeout+m.wire(maxFrame)+2*m.guard,
		2*len(req)+2*maxFrame+noiseMargin, m.guard, requestName(req))
	if err := m.line.WriteUntil(ctx, req, m.tx.Deadline()); err != nil && !errors.Is(err, syscall.EINTR) {
		return fmt.Errorf("write: %w", err)
	}
	// EINTR: the frame was written and the wait for it to leave the UART
	// (tcdrain) was cut short by a signal; Linux does not restart that
	// ioctl. drivers/link retries it now; a Line that still reports it has
	// sent the frame, and the answer window below counts the request's
	// wire time anyway. Taken for a line failure, it aborted secondary
	// scans (1 write in ~10^5 here, more under strace).
	m.buf = m.buf[:0]
	if !m.opt.Echo {
		return nil
	}
	// The echo arrives as the request goes out: give it the request's wire
	// time plus the guard.
	deadline := m.tx.Until(time.Now().Add(m.wire(len(req)) + m.guard))
	for len(m.buf) < len(req) {
		n, err := m.line.ReadSome(m.rd[:], deadline)
		m.buf = append(m.buf, m.rd[:n]...)
		if cerr := m.tx.Count(m.rd[:n]); cerr != nil {
			m.buf = m.buf[:0]
			return cerr
		}
		if err != nil {
			if errors.Is(err, link.ErrTimeout) {
				break
			}
			return fmt.Errorf("read echo: %w", err)
		}
	}
	if len(m.buf) < len(req) || string(m.buf[:len(req)]) != string(req) {
		m.c.Collisions.Add(1)
		m.buf = m.buf[:0]
		return ErrEcho
	}
	m.c.Echoes.Add(1)
	m.buf = append(m.buf[:0], m.buf[len(req):]...)
	return nil
}

// requestName names a request for a noise report: its bytes.
func requestName(req []byte) string {
	if len(req) > 24 {
		return fmt.Sprintf("request % X...", req[:24])
	}
	return fmt.Sprintf("request % X", req)
}

func (m *Master) wire(n int) time.Duration { return time.Duration(n) * m.line.Config().CharTime() }

// drainLate reads and drops whatever arrives until the line has been quiet
// for the guard time, and says how many bytes it dropped. A line that does
// not go quiet within a late frame's time is noise (*link.NoiseError).
func (m *Master) drainLate(ctx context.Context) (int, error) {
	b := link.NewBudget(ctx, m.opt.Timeout+m.wire(maxFrame)+2*m.guard, 2*maxFrame+noiseMargin, m.guard, "a failed transaction (drain)")
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := m.line.ReadSome(m.rd[:], b.Until(time.Now().Add(m.guard)))
		m.c.Stray.Add(int64(n))
		total += n
		if cerr := b.Count(m.rd[:n]); cerr != nil {
			return total, cerr
		}
		if err != nil && !errors.Is(err, link.ErrTimeout) {
			return total, fmt.Errorf("drain: %w", err)
		}
		if n == 0 {
			if _, noise := b.Over(); noise != nil {
				return total, noise
			}
			return total, nil
		}
	}
}

// receive reads one frame: the first byte must come within the answer
// timeout after the request has left (Drain returns at once on a pty and
// on some USB adapters, so the request's wire time is added), and the
// frame ends by its own length; one that stalls for the guard time is
// over. Bytes that begin no frame are dropped and counted, and so is an
// exact echo of req. Any failure leaves the line to be drained before the
// next request.
func (m *Master) receive(ctx context.Context, req []byte) (pmbus.Frame, []byte, error) {
	f, raw, err := m.receiveFrame(ctx, req)
	if err != nil {
		m.drain = true
	}
	return f, raw, err
}

func (m *Master) receiveFrame(ctx context.Context, req []byte) (pmbus.Frame, []byte, error) {
	tx := m.tx
	deadline := tx.Until(time.Now().Add(m.wire(len(req)) + m.opt.Timeout))
	var problem error
	var first time.Time // when the buffered bytes began to arrive
	if len(m.buf) > 0 {
		first = time.Now()
	}
	for {
		// Resynchronise over what is buffered.
		sc := scanFrame(m.buf, req)
		m.c.Echoes.Add(int64(sc.echoes))
		m.c.Stray.Add(int64(sc.dropped))
		if sc.dropped > 0 {
			problem = ErrChecksum
		}
		if sc.end > 0 {
			raw := append([]byte(nil), m.buf[sc.start:sc.end]...)
			m.c.Stray.Add(int64(len(m.buf) - sc.end))
			m.buf = m.buf[:0]
			f := sc.frame
			f.Data = append([]byte(nil), f.Data...)
			return f, raw, nil
		}
		m.buf = append(m.buf[:0], m.buf[sc.start:]...)
		d := deadline
		if len(m.buf) > 0 || problem != nil {
			// A frame whose rest cannot arrive before its wire time has
			// passed: sleep until then instead of waking for every
			// character (a reading's CPU was mostly those wake-ups).
			n := announcedLen(m.buf)
			if rest := n - len(m.buf); n > 0 && rest > 1 {
				m.line.WaitGap(m.wire(rest - 1))
			}
			// The stall is counted from now, after any sleep: a master
			// that was not scheduled must not take the bytes it has not
			// yet read for a frame that stopped. A frame whose length is
			// known gets its whole wire time: a busy converter or host may
			// pause mid-frame longer than the guard without anything being
			// wrong.
			d = time.Now().Add(m.guard)
			if n > 0 {
				d = later(d, first.Add(m.wire(n)+m.guard))
			}
			d = tx.Until(d)
		}
		n, err := m.line.ReadSome(m.rd[:], d)
		if n > 0 && len(m.buf) == 0 {
			first = time.Now().Add(-m.wire(n))
		}
		m.buf = append(m.buf, m.rd[:n]...)
		if cerr := tx.Count(m.rd[:n]); cerr != nil {
			m.c.Stray.Add(int64(len(m.buf)))
			m.buf = m.buf[:0]
			return pmbus.Frame{}, nil, cerr
		}
		if err != nil && !errors.Is(err, link.ErrTimeout) {
			return pmbus.Frame{}, nil, fmt.Errorf("read: %w", err)
		}
		if cerr := ctx.Err(); cerr != nil {
			m.buf = m.buf[:0]
			return pmbus.Frame{}, nil, fmt.Errorf("%w: %w", ErrTimeout, cerr) // sent: its answer was not waited for
		}
		if n == 0 {
			if _, noise := tx.Over(); noise != nil {
				m.c.Stray.Add(int64(len(m.buf)))
				m.buf = m.buf[:0]
				return pmbus.Frame{}, nil, noise
			}
			break
		}
	}
	switch {
	case problem != nil:
		m.c.Checksum.Add(1)
		m.c.Stray.Add(int64(len(m.buf)))
		m.buf = m.buf[:0]
		return pmbus.Frame{}, nil, problem
	case len(m.buf) > 0:
		m.c.Truncated.Add(1)
		m.c.Stray.Add(int64(len(m.buf)))
		n := len(m.buf)
		m.buf = m.buf[:0]
		return pmbus.Frame{}, nil, fmt.Errorf("%w: %d bytes", ErrTruncated, n)
	}
	m.c.Timeouts.Add(1)
	return pmbus.Frame{}, nil, ErrTimeout
}

// collect reads everything that arrives until the line falls silent: a
// selection is answered by one E5 per matching meter, and on RS-485 several
// at once arrive as one garbled byte or more. With quick, a lone E5 ends
// it after the idle time rather than the guard time: a read that selects
// a configured meter need not wait out the window for a second one (a
// duplicate address then shows as a failed read instead of a collision).
func (m *Master) collect(ctx context.Context, req []byte, quick bool, window time.Duration) ([]byte, error) {
	tx := link.NewBudget(ctx, m.wire(len(req))+window+m.wire(maxFrame)+2*m.guard, 2*len(req)+maxFrame+noiseMargin, m.guard, requestName(req))
	deadline := tx.Until(time.Now().Add(m.wire(len(req)) + window))
	for {
		d := deadline
		if len(m.buf) > 0 {
			d = time.Now().Add(m.guard)
			if got := stripEchoes(m.buf, req); quick && len(got) == 1 && got[0] == pmbus.Ack {
				d = time.Now().Add(m.opt.Idle)
			}
			d = tx.Until(d)
		}
		n, err := m.line.ReadSome(m.rd[:], d)
		m.buf = append(m.buf, m.rd[:n]...)
		if cerr := tx.Count(m.rd[:n]); cerr != nil {
			m.c.Stray.Add(int64(len(m.buf)))
			m.buf = m.buf[:0]
			return nil, cerr
		}
		if cerr := ctx.Err(); cerr != nil {
			m.buf = m.buf[:0]
			return nil, fmt.Errorf("%w: %w", ErrTimeout, cerr)
		}
		if n == 0 || err != nil {
			if _, noise := tx.Over(); noise != nil {
				m.c.Stray.Add(int64(len(m.buf)))
				m.buf = m.buf[:0]
				return nil, noise
			}
			out := append([]byte(nil), m.buf...)
			m.buf = m.buf[:0]
			if err != nil && !errors.Is(err, link.ErrTimeout) {
				return out, fmt.Errorf("read: %w", err)
			}
			return out, nil
		}
	}
}

// stripEchoes is b after the exact echoes of req it starts with.
func stripEchoes(b, req []byte) []byte {
	for len(b) >= len(req) && string(b[:len(req)]) == string(req) {
		b = b[len(req):]
	}
	return b
}

// Init resets a meter's link layer with SND_NKE to its own address (some
// meters ignore the broadcast forms) and restarts its frame count bit.
// Sent to 253 it resets (and deselects) the meter the last selection
// singled out, so its FCB restarts too.
func (m *Master) Init(ctx context.Context, addr byte) error {
	if err := ctx.Err(); err != nil {
		return link.NotSent(err)
	}
	req := pmbus.ShortFrame(pmbus.CSndNke, addr)
	m.resetFCB(addr)
	if err := m.send(ctx, req); err != nil {
		return err
	}
	f, _, err := m.receive(ctx, req)
	if err != nil {
		return err
	}
	if f.Kind != pmbus.KindAck {
		return fmt.Errorf("%w: %v frame to SND_NKE", ErrUnexpected, f.Kind)
	}
	return nil
}

// resetFCB forgets the FCB of the meters a SND_NKE to addr reaches: a
// meter clears its FCB on SND_NKE, and it keeps one FCB whichever address
// form reaches it. It is done as the request goes out, as the meter may
// have heard it even if its acknowledgement is lost.
func (m *Master) resetFCB(addr byte) {
	switch addr {
	case pmbus.AddrNetworkLayer:
		if m.selected != (meterKey{}) {
			delete(m.fcb, m.selected)
		}
		m.selected = meterKey{}
	case pmbus.AddrTest, pmbus.AddrBroadcast:
		clear(m.fcb)
		m.selected = meterKey{}
	default:
		delete(m.fcb, primaryKey(addr))
	}
}

// request sends REQ_UD2 to addr with the meter's FCB and returns its answer.
// The FCB toggles only after an answer, so a repeat after a lost answer
// asks for the same telegram again. Through 253 the FCB is that of the
// meter selected.
func (m *Master) request(ctx context.Context, addr byte) (Telegram, error) {
	key := primaryKey(addr)
	if addr == pmbus.AddrNetworkLayer {
		key = m.selected
	}
	fcb, seen := m.fcb[key]
	if !seen {
		fcb = true
	}
	c := pmbus.CField(pmbus.CReqUd2).WithFCB(fcb)
	req := pmbus.ShortFrame(byte(c), addr)
	if err := m.send(ctx, req); err != nil {
		return Telegram{}, err
	}
	f, raw, err := m.receive(ctx, req)
	if err != nil {
		return Telegram{}, err
	}
	if f.Kind != pmbus.KindLong || !f.C.IsRspUd() {
		m.drain = true
		return Telegram{}, fmt.Errorf("%w: %v frame, C 0x%02X", ErrUnexpected, f.Kind, byte(f.C))
	}
	if key != (meterKey{}) {
		m.fcb[key] = !fcb
	}
	return Telegram{Address: f.Address, C: f.C, CI: f.CI, Data: f.Data, Raw: raw}, nil
}

// ReadPrimary reads a meter by primary address: every telegram until the
// meter stops announcing more, at most Options.MaxTelegrams. The answer's
// A-field must be the polled address.
func (m *Master) ReadPrimary(ctx context.Context, addr byte) ([]Telegram, error) {
	return m.readAll(ctx, func(t Telegram) error {
		if addr != pmbus.AddrTest && t.Address != addr {
			m.c.WrongAddress.Add(1)
			return fmt.Errorf("%w: A-field %d, polled %d", ErrWrongAddress, t.Address, addr)
		}
		return nil
	}, addr)
}

// ReadSecondary selects a meter by its secondary address and reads it
// through address 253; the identification in the answer must match. Fields
// of s may be wildcards (manufacturer 0xFFFF, version or medium 0xFF).
func (m *Master) ReadSecondary(ctx context.Context, s Secondary) ([]Telegram, error) {
	return m.readSelected(ctx, s.Pattern(), s)
}

// readSelected selects by p and reads the one meter that answered.
func (m *Master) readSelected(ctx context.Context, p Pattern, s Secondary) ([]Telegram, error) {
	switch r, _, err := m.selectPattern(ctx, p, true, 0); {
	case err != nil:
		return nil, err
	case r == ProbeNone:
		m.c.Timeouts.Add(1)
		return nil, fmt.Errorf("select %s: %w", p, ErrTimeout)
	case r == ProbeCollision:
		return nil, fmt.Errorf("select %s: %w", p, ErrCollision)
	}
	return m.readAll(ctx, func(t Telegram) error {
		if got, ok := headerSecondary(t.CI, t.Data); ok && !p.Matches(got) {
			m.c.WrongAddress.Add(1)
			return fmt.Errorf("%w: %v, selected %v", ErrWrongMeter, got, s)
		}
		return nil
	}, pmbus.AddrNetworkLayer)
}

func (m *Master) readAll(ctx context.Context, check func(Telegram) error, addr byte) ([]Telegram, error) {
	var out []Telegram
	for len(out) < m.opt.MaxTelegrams {
		if err := ctx.Err(); err != nil {
			return out, link.NotSent(err)
		}
		t, err := m.request(ctx, addr)
		if err != nil {
			return out, err
		}
		if err := check(t); err != nil {
			return out, err
		}
		out = append(out, t)
		if !t.MoreFollow() {
			return out, nil
		}
	}
	return out, nil
}

// Probe is what a selection or ping drew from the bus.
type Probe uint8

const (
	ProbeNone      Probe = iota // silence
	ProbeOne                    // exactly one E5
	ProbeCollision              // garbled, or more than one E5
)

func (p Probe) String() string {
	return [...]string{"none", "one", "collision"}[p]
}

// Select sends SND_UD with CI 52 to address 253. Every meter matching p
// answers E5 and is selected; the others deselect.
func (m *Master) Select(ctx context.Context, p Pattern) (Probe, error) {
	r, _, err := m.selectPattern(ctx, p, false, 0)
	return r, err
}

// selectPattern is Select; quick for a read, which need not wait out the
// answer window after a lone E5; window overrides the answer timeout when
// longer. late: nothing came in the window, but something came during
// the drain after it.
func (m *Master) selectPattern(ctx context.Context, p Pattern, quick bool, window time.Duration) (Probe, bool, error) {
	if err := ctx.Err(); err != nil {
		return ProbeNone, false, link.NotSent(err)
	}
	data := p.Bytes()
	req, err := pmbus.Encode(pmbus.Frame{Kind: pmbus.KindLong, C: pmbus.CField(pmbus.CSndUd), Address: pmbus.AddrNetworkLayer, CI: 0x52, Data: data[:]})
	if err != nil {
		return ProbeNone, false, err
	}
	m.c.Selects.Add(1)
	r, late, err := m.probe(ctx, req, quick, window)
	m.selected = meterKey{}
	if r == ProbeOne {
		m.selected = patternKey(p)
	}
	return r, late, err
}

// Ping sends SND_NKE to a primary address and classifies the answer.
func (m *Master) Ping(ctx context.Context, addr byte) (Probe, error) {
	if err := ctx.Err(); err != nil {
		return ProbeNone, link.NotSent(err)
	}
	r, _, err := m.ping(ctx, addr, 0)
	return r, err
}

// ping is Ping with an answer window (the answer timeout when shorter);
// late as for selectPattern.
func (m *Master) ping(ctx context.Context, addr byte, window time.Duration) (Probe, bool, error) {
	if err := ctx.Err(); err != nil {
		return ProbeNone, false, link.NotSent(err)
	}
	m.resetFCB(addr)
	return m.probe(ctx, pmbus.ShortFrame(pmbus.CSndNke, addr), false, window)
}

// probe sends req and classifies what answers it within window (the
// answer timeout when shorter). A probe that drew nothing is followed by
// a drain for the guard time, as a failed transaction is: an E5 that
// comes after the window belongs to this probe, and taken for the next
// one's it would credit the wrong address or pattern. late reports such
// an answer, so a caller can ask again with more time.
func (m *Master) probe(ctx context.Context, req []byte, quick bool, window time.Duration) (Probe, bool, error) {
	if err := m.send(ctx, req); err != nil {
		if errors.Is(err, ErrEcho) {
			return ProbeCollision, false, nil
		}
		return ProbeNone, false, err
	}
	all, err := m.collect(ctx, req, quick, max(window, m.opt.Timeout))
	if err != nil {
		m.drain = true
		return ProbeNone, false, err
	}
	got := stripEchoes(all, req)
	m.c.Echoes.Add(int64((len(all) - len(got)) / len(req)))
	switch {
	case len(got) == 0:
		n, err := m.drainLate(ctx)
		if err != nil {
			return ProbeNone, false, err
		}
		late := n > 0
		if late {
			m.c.Late.Add(1)
		}
		return ProbeNone, late, nil
	case len(got) == 1 && got[0] == pmbus.Ack:
		return ProbeOne, false, nil
	}
	m.c.Collisions.Add(1)
	return ProbeCollision, false, nil
}

// scanned is what scanFrame found in a buffer.
type scanned struct {
	frame      pmbus.Frame
	start, end int // the frame is buf[start:end]; end 0: none complete yet, keep buf[start:]
	echoes     int // echoes of the request skipped
	dropped    int // bytes that began no frame
}

// scanFrame finds the first complete frame in buf, skipping echoes of req
// and bytes that begin no valid frame. It is pure, so the resynchronisation
// can be fuzzed apart from the line.
func scanFrame(buf, req []byte) scanned {
	var s scanned
	for s.start < len(buf) {
		rest := buf[s.start:]
		if len(req) > 0 && len(rest) >= len(req) && string(rest[:len(req)]) == string(req) {
			s.echoes++
			s.start += len(req)
			continue
		}
		f, used, err := pmbus.Decode(rest)
		if err == nil {
			s.frame, s.end = f, s.start+used
			return s
		}
		if errors.Is(err, pmbus.ErrIncomplete) {
			return s
		}
		s.dropped++
		s.start++
	}
	return s
}

// announcedLen is the length a frame start in b announces (short or long
// frame with a consistent header), 0 when unknown.
func announcedLen(b []byte) int {
	switch {
	case len(b) > 0 && b[0] == pmbus.StartShort:
		return 5
	case len(b) >= 4 && b[0] == pmbus.StartLong && b[3] == pmbus.StartLong && b[1] == b[2]:
		return int(b[1]) + 6
	}
	return 0
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
