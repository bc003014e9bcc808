package simulator

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/protocol/cjt188"
	"tidegate/protocol/modbus"
)

// Bus protocols.
const (
	ProtocolModbus = "modbus"
	ProtocolMBus   = "mbus"
	ProtocolCJT188 = "cjt188" // CJ/T 188 on the M-Bus physical layer or RS-485
)

// maxFrame bounds what the bus collects as one request: a longer burst is
// noise, not a request, and must not grow memory.
const maxFrame = 512

// BusStats counts what a bus saw, for tests and the efficiency benchmarks.
type BusStats struct {
	Requests   int64 // complete frames received
	Replies    int64 // frames sent
	Collisions int64 // requests that arrived while the bus was busy, and replies that overlapped
	Noise      int64 // noise bursts injected
	WrongBaud  int64 // replies garbled because the gateway's pty was at another baud
	// TooSoon counts requests that began within 3.5 characters of the
	// end of an answer on a framing: silence bus: every slave took the
	// two for one frame, and nobody answered.
	TooSoon int64
	// Babbled counts the bytes a babbler (BusFaults.Babble) and stuck
	// meters (MeterFaults.Stuck) put on the line.
	Babbled int64
}

// How a Modbus slave tells a request is complete (BusConfig.Framing).
const (
	FramingLength  = "length"
	FramingSilence = "silence"
)

// Bus is one simulated RS-485 line with its meters.
type Bus struct {
	Name       string
	Protocol   string
	Line       Line
	Turnaround time.Duration // meter response latency after a request is complete
	// Framing: FramingLength ("" too) or FramingSilence, for Modbus.
	Framing string
	// mixed: an M-Bus bus that also carries CJ/T 188 meters; requests of
	// both are framed.
	mixed bool

	clock      func() time.Time
	responders []Responder
	faults     BusFaults
	log        *logrus.Entry

	mu   sync.Mutex // meters see one request at a time
	txMu sync.Mutex // one transmitter on the wire at a time
	rngM sync.Mutex
	rng  *rand.Rand

	busyUntil atomic.Int64 // unix nanos until which a reply occupies the wire
	collided  atomic.Bool  // set when a request arrives while busy: the reply in flight is garbled

	txEnd atomic.Int64 // unix nanos when the last transmission's last bit left

	stats struct{ requests, replies, collisions, noise, wrongBaud, tooSoon, babbled atomic.Int64 }

	master, slave *os.File
	listener      net.Listener
	wg            sync.WaitGroup
}

// endpoint is where requests come from: the pty master or a TCP client.
type endpoint interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// Stats returns the bus's counters.
func (b *Bus) Stats() BusStats {
	return BusStats{b.stats.requests.Load(), b.stats.replies.Load(), b.stats.collisions.Load(), b.stats.noise.Load(), b.stats.wrongBaud.Load(), b.stats.tooSoon.Load(), b.stats.babbled.Load()}
}

// Device is the pty slave path the gateway opens, "" when the bus has no pty.
func (b *Bus) Device() string {
	if b.slave == nil {
		return ""
	}
	return b.slave.Name()
}

// TCPAddr is the address of the bus's TCP listener, "" when it has none.
func (b *Bus) TCPAddr() string {
	if b.listener == nil {
		return ""
	}
	return b.listener.Addr().String()
}

func (b *Bus) open(withPTY bool, tcp string) error {
	if withPTY {
		m, s, err := openPTY()
		if err != nil {
			return err
		}
		b.master, b.slave = m, s
	}
	if tcp != "" {
		l, err := net.Listen("tcp", tcp)
		if err != nil {
			b.close()
			return err
		}
		b.listener = l
	}
	return nil
}

func (b *Bus) start(ctx context.Context) {
	if b.master != nil {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.serve(ctx, b.master) }()
	}
	if b.listener != nil {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for {
				c, err := b.listener.Accept()
				if err != nil {
					return
				}
				b.wg.Add(1)
				go func() {
					defer b.wg.Done()
					defer c.Close()
					stop := context.AfterFunc(ctx, func() { c.Close() })
					defer stop()
					if b.faults.Babble.Rate > 0 {
						// The converter streams to whoever is connected;
						// the babbler ends with the connection.
						cctx, cancel := context.WithCancel(ctx)
						defer cancel()
						b.wg.Add(1)
						go func() { defer b.wg.Done(); b.babble(cctx, c.(*net.TCPConn), uint64(time.Now().UnixNano())) }()
					}
					b.serve(ctx, c.(*net.TCPConn))
				}()
			}
		}()
	}
	if b.faults.Babble.Rate > 0 && b.master != nil {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.babble(ctx, b.master, hash(b.Name)) }()
	}
	if b.faults.NoiseEvery > 0 && b.master != nil {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.noise(ctx, b.master) }()
	}
}

func (b *Bus) close() {
	if b.listener != nil {
		b.listener.Close()
	}
	if b.master != nil {
		b.master.Close()
	}
	b.wg.Wait()
	if b.slave != nil {
		b.slave.Close()
	}
}

// serve reads requests from one endpoint until ctx ends or it closes. A
// Modbus request is complete when its function code's length is in (or,
// for a function of unknown length, after 3.5 characters of silence); an
// M-Bus request when its length says so.
func (b *Bus) serve(ctx context.Context, ep endpoint) {
	buf := make([]byte, 256)
	var frame []byte
	var first, last time.Time
	discard := false // a request that collided: drop it whole
	gap := b.Line.ModbusGap()
	if b.Protocol == ProtocolMBus || b.Protocol == ProtocolCJT188 {
		// M-Bus has no inter-frame silence rule; a stalled partial frame is
		// dropped after 11 bit times + 50 ms, the standard's answer window.
		gap = b.Line.WireTime(1) + 50*time.Millisecond
	}
	for ctx.Err() == nil {
		deadline := time.Now().Add(200 * time.Millisecond)
		if len(frame) > 0 || discard {
			deadline = last.Add(gap)
		}
		_ = ep.SetReadDeadline(deadline)
		n, err := ep.Read(buf)
		now := time.Now()
		if n > 0 {
			if now.UnixNano() < b.busyUntil.Load() {
				// Two talkers on a half-duplex line: both frames are garbled.
				b.collided.Store(true)
				b.stats.collisions.Add(1)
				discard, frame = true, frame[:0]
			}
			if !discard && len(frame) == 0 && b.Framing == FramingSilence && now.UnixNano()-b.txEnd.Load() < int64(gap) {
				// The answer on the wire and this request without 3.5
				// characters between them: a slave that frames by silence
				// hears one frame with a bad CRC.
				b.stats.tooSoon.Add(1)
				discard = true
			}
			if !discard {
				if len(frame) == 0 {
					first = now
				}
				if len(frame)+n <= maxFrame {
					frame = append(frame, buf[:n]...)
				}
			}
			last = now
			if b.mixed && !discard {
				if _, l, err := cjt188.Decode(frame); err == nil {
					req := append([]byte(nil), frame[:l]...)
					frame = frame[:0]
					b.transact(ctx, ep, req, first, false)
					continue
				}
				// A CJ/T 188 frame is not complete yet: M-Bus must not take
				// its 68 for a long frame's start.
				if i := bytes.IndexByte(frame, 0x68); i >= 0 && len(frame) > i+2 && frame[i+1] != frame[i+2] {
					continue
				}
			}
			if b.Protocol == ProtocolModbus && b.Framing != FramingSilence && !discard {
				// A slave that frames by function code (libmodbus, most meter
				// firmware) answers once the request's last byte is in; an
				// unknown function or a bad CRC waits for the silence.
				if l := modbus.RequestLength(frame); l > 0 && len(frame) >= l && modbus.CheckCRC(frame[:l]) {
					req := append([]byte(nil), frame[:l]...)
					// What follows it is noise, dropped at the next silence.
					frame = append(frame[:0], frame[l:]...)
					b.transact(ctx, ep, req, first, false)
					continue
				}
			}
			if b.Protocol == ProtocolMBus && !discard {
				if l := mbusFrameLen(frame); l > 0 && len(frame) >= l {
					req := append([]byte(nil), frame[:l]...)
					frame = frame[:0]
					b.transact(ctx, ep, req, first, false)
				}
			}
			if b.Protocol == ProtocolCJT188 && !discard {
				// Complete when a valid frame is in (preamble and stray
				// bytes before it included); a bad one waits for silence.
				if _, l, err := cjt188.Decode(frame); err == nil {
					req := append([]byte(nil), frame[:l]...)
					frame = frame[:0]
					b.transact(ctx, ep, req, first, false)
				}
			}
			continue
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			// EIO from a pty whose slave is closed by the gateway: wait for it to reopen.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		// Silence.
		if discard {
			discard = false
			continue
		}
		if len(frame) > 0 {
			req := append([]byte(nil), frame...)
			frame = frame[:0]
			if b.Protocol == ProtocolModbus {
				b.transact(ctx, ep, req, first, true)
			}
			// An incomplete M-Bus frame followed by silence is line noise: dropped.
		}
	}
}

// mbusFrameLen is the length an M-Bus frame announces by its first bytes, 0
// while unknown and -1 for a start byte that begins no frame.
func mbusFrameLen(f []byte) int {
	switch f[0] {
	case 0xE5:
		return 1
	case 0x10:
		return 5
	case 0x68:
		if len(f) < 2 {
			return 0
		}
		return int(f[1]) + 6
	}
	return 1 // not a frame start: taken as one byte of noise that nobody answers
}

// transact lets every meter see the request and schedules the reply, if
// any. A real line carries the request for its wire time, so the reply can
// start no earlier than the end of that plus the meter's turnaround, and
// for a request framed by silence (bySilence) the 3.5 characters the meter
// waited to know it was complete. The reply is sent from its own goroutine: a late meter does
// not stop the line from hearing the master's next request (which then
// collides with the late answer, as it would on RS-485).
func (b *Bus) transact(ctx context.Context, ep endpoint, req []byte, first time.Time, bySilence bool) {
	b.mu.Lock()
	b.stats.requests.Add(1)
	now := b.clock()
	var replies [][]byte
	var extra, stuck time.Duration
	for _, r := range b.responders {
		var out []byte
		var d time.Duration
		if dr, ok := r.(delayedResponder); ok {
			out, d = dr.RespondDelayed(req, now)
		} else {
			out = r.Respond(req, now)
		}
		if out != nil {
			replies = append(replies, out)
			extra = max(extra, d)
			if f, ok := r.(*faulty); ok {
				stuck = max(stuck, f.stuck())
			}
		}
	}
	b.mu.Unlock()
	if len(replies) == 0 {
		return
	}
	reply := replies[0]
	if len(replies) > 1 {
		reply = garbleTogether(replies)
		b.stats.collisions.Add(int64(len(replies) - 1))
	} else if b.faults.CollisionProb > 0 && b.chance(b.faults.CollisionProb) {
		reply = b.garble(reply)
		b.stats.collisions.Add(1)
	}
	if f, ok := ep.(*os.File); ok && f == b.master {
		if baud := masterBaud(f); baud != 0 && baud != b.Line.Baud {
			reply = resample(reply, b.Line, baud)
			if b.stats.wrongBaud.Add(1) == 1 && b.log != nil {
				b.log.WithFields(logrus.Fields{"bus": b.Name, "gateway_baud": baud, "bus_baud": b.Line.Baud}).Warn("the gateway is at the wrong baud: replies arrive garbled")
			}
		}
	}
	wireEnd := first.Add(b.Line.WireTime(len(req)))
	if bySilence {
		wireEnd = wireEnd.Add(b.Line.ModbusGap())
	}
	startAt := wireEnd.Add(b.Turnaround + extra)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		sl := newSleeper()
		defer sl.close()
		// A long wait (a late meter) stays cancellable; its last
		// milliseconds, and a turnaround's, are slept exactly.
		if d := time.Until(startAt) - 2*time.Millisecond; d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		sl.sleep(time.Until(startAt))
		b.txMu.Lock()
		defer b.txMu.Unlock()
		if b.transmit(ep, reply, startAt, sl) != nil {
			return
		}
		b.stats.replies.Add(1)
		// A stuck transmitter: the same answer again and again, back to
		// back, holding the line.
		for end := time.Now().Add(stuck); time.Now().Before(end) && ctx.Err() == nil; {
			if b.transmit(ep, reply, time.Now(), sl) != nil {
				return
			}
			b.stats.babbled.Add(int64(len(reply)))
		}
	}()
}

// transmit writes data at line speed from at (now, if that is more than a
// moment ago: the line was busy): byte i leaves when its last bit would
// have crossed the wire, so the far end sees the true arrival times. A
// wake-up a little late is caught up, not carried into every byte.
func (b *Bus) transmit(ep endpoint, data []byte, at time.Time, sl sleeper) error {
	start := at
	if now := time.Now(); now.Sub(start) > 2*time.Millisecond {
		start = now
	}
	char := b.Line.CharTime()
	end := start.Add(b.Line.WireTime(len(data))).UnixNano()
	b.busyUntil.Store(end)
	b.collided.Store(false)
	defer func() { b.busyUntil.Store(0); b.txEnd.Store(end) }()
	for i := 0; i < len(data); {
		due := min(int(time.Since(start)/char), len(data))
		if due <= i {
			sl.sleep(time.Until(start.Add(time.Duration(i+1) * char)))
			continue
		}
		chunk := data[i:due]
		if b.collided.Load() {
			chunk = b.garble(chunk)
		}
		if _, err := ep.Write(chunk); err != nil {
			return err
		}
		i = due
	}
	return nil
}

// garbleTogether is what a receiver makes of several transmitters at once:
// on RS-485 a dominant 0 wins, so the bytes AND together, and the longest
// frame's tail arrives alone.
func garbleTogether(frames [][]byte) []byte {
	n := 0
	for _, f := range frames {
		n = max(n, len(f))
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = 0xFF
	}
	for _, f := range frames {
		for i, c := range f {
			out[i] &= c
		}
	}
	return out
}

func (b *Bus) chance(p float64) bool {
	b.rngM.Lock()
	defer b.rngM.Unlock()
	return b.rng.Float64() < p
}

func (b *Bus) garble(p []byte) []byte {
	b.rngM.Lock()
	defer b.rngM.Unlock()
	out := append([]byte(nil), p...)
	for i := range out {
		out[i] ^= byte(1 << b.rng.IntN(8))
	}
	return out
}

// noise puts random bytes on an idle line now and then, as a second master
// or a bad termination does.
func (b *Bus) noise(ctx context.Context, ep endpoint) {
	for {
		b.rngM.Lock()
		wait := time.Duration(float64(b.faults.NoiseEvery) * (0.5 + b.rng.Float64()))
		n := 1 + b.rng.IntN(8)
		burst := make([]byte, n)
		for i := range burst {
			burst[i] = byte(b.rng.UintN(256))
		}
		b.rngM.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		b.txMu.Lock()
		sl := newSleeper()
		b.transmit(ep, burst, time.Now(), sl)
		sl.close()
		b.txMu.Unlock()
		b.stats.noise.Add(1)
	}
}
