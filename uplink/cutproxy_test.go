package uplink

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cutProxy is the #563 test's proxy: it reads MQTT packets in both
// directions, swallows every PUBACK from the broker while told to, and
// cuts the connection at an exact packet — when it swallows the cutAt-th
// PUBACK of a connection — rather than after a wait. It counts what the
// client publishes on each connection, resends (DUP set) apart, so a test
// can wait for paho's resend on reconnect by count.
type cutProxy struct {
	t        testing.TB
	ln       net.Listener
	upstream string

	swallow   atomic.Bool
	cutAt     atomic.Int64 // cut the connection that swallows its cutAt-th PUBACK, once; 0: never
	swallowed atomic.Int64 // PUBACKs swallowed, all connections
	// connackDelay holds the broker's CONNACK to the first connection back
	// this long: a slow broker, and the window in which a client that
	// publishes while still connecting meets paho's store reset.
	connackDelay atomic.Int64

	mu    sync.Mutex
	conns []*proxyConn // every connection accepted, in order
	wg    sync.WaitGroup
}

type proxyConn struct {
	down, up   net.Conn
	published  atomic.Int64 // QoS > 0 PUBLISH packets from the client, resends included
	resent     atomic.Int64 // of them, those with DUP set (paho's resume)
	swallowed  atomic.Int64 // PUBACKs swallowed on this connection
	cutByProxy atomic.Bool
}

func startCutProxy(t testing.TB, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.CutAll()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// conn is the i-th connection accepted (0-based), nil if none yet.
func (p *cutProxy) conn(i int) *proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i < len(p.conns) {
		return p.conns[i]
	}
	return nil
}

func (p *cutProxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.down.Close()
		c.up.Close()
	}
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			down.Close()
			continue
		}
		c := &proxyConn{down: down, up: up}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		first := len(p.conns) == 1
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_ = copyPackets(up, down, func(hdr byte) bool {
				if hdr>>4 == 3 && hdr&0x06 != 0 { // PUBLISH, QoS 1 or 2
					c.published.Add(1)
					if hdr&0x08 != 0 {
						c.resent.Add(1)
					}
				}
				return true
			})
			up.Close()
			down.Close()
		}()
		go func() {
			defer p.wg.Done()
			_ = copyPackets(down, up, func(hdr byte) bool {
				if d := p.connackDelay.Load(); hdr>>4 == 2 && first && d > 0 {
					time.Sleep(time.Duration(d))
				}
				if hdr>>4 != 4 || !p.swallow.Load() { // not a PUBACK, or let through
					return true
				}
				p.swallowed.Add(1)
				if n := c.swallowed.Add(1); p.cutAt.CompareAndSwap(n, 0) { // one cut only
					c.cutByProxy.Store(true)
					down.Close()
					up.Close()
				}
				return false
			})
			up.Close()
			down.Close()
		}()
	}
}

var errBadLength = errors.New("cut proxy: malformed MQTT remaining length")

// copyPackets copies MQTT packets from src to dst, whole, each one that
// pass(first header byte) allows.
func copyPackets(dst io.Writer, src io.Reader, pass func(byte) bool) error {
	var hdr [5]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(src, hdr[:1]); err != nil {
			return err
		}
		n, length, mult := 1, 0, 1
		for {
			if n == len(hdr) {
				return errBadLength
			}
			if _, err := io.ReadFull(src, hdr[n:n+1]); err != nil {
				return err
			}
			length += int(hdr[n]&0x7f) * mult
			mult *= 128
			n++
			if hdr[n-1]&0x80 == 0 {
				break
			}
		}
		buf = append(buf[:0], hdr[:n]...)
		buf = append(buf, make([]byte, length)...)
		if _, err := io.ReadFull(src, buf[n:]); err != nil {
			return err
		}
		if !pass(hdr[0]) {
			continue
		}
		if _, err := dst.Write(buf); err != nil {
			return err
		}
	}
}

func (p *cutProxy) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ""
	for i, c := range p.conns {
		s += fmt.Sprintf("[conn %d: published %d resent %d swallowed %d cut %v] ", i, c.published.Load(), c.resent.Load(), c.swallowed.Load(), c.cutByProxy.Load())
	}
	return s
}
