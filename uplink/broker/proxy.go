package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards TCP connections to an MQTT broker and can, on request,
// swallow the broker's PUBACK packets and cut every connection. Together these
// reproduce the case paho v1.5.1 gets wrong (upstream #563): a QoS 1 publish
// in flight across a reconnect completes without error although no PUBACK
// ever came.
type Proxy struct {
	ln       net.Listener
	upstream string
	swallow  atomic.Bool
	swallowN atomic.Int64
	refuse   atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on addr and forwards to upstream (host:port).
func NewProxy(addr, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &Proxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is Addr as a paho broker URL.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// SwallowPubacks makes the proxy drop (on) or pass (off) PUBACK packets from
// the broker to the client. Nothing else is touched.
func (p *Proxy) SwallowPubacks(on bool) { p.swallow.Store(on) }

// Refuse makes the proxy close new connections at once (on), as a broker
// that is down would, while existing ones carry on; off accepts again.
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// Swallowed counts the PUBACKs dropped so far.
func (p *Proxy) Swallowed() int64 { return p.swallowN.Load() }

// CutAll closes every open connection, both sides, as a broker crash would.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Close stops accepting and cuts every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.CutAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			_ = down.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = down.Close()
			continue
		}
		p.track(down, true)
		p.track(up, true)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(up, down)
			_ = up.Close()
			_ = down.Close()
		}()
		go func() {
			defer p.wg.Done()
			_ = p.filter(down, up)
			_ = up.Close()
			_ = down.Close()
			p.track(down, false)
			p.track(up, false)
		}()
	}
}

// errPacket is a malformed MQTT remaining length from the broker.
var errPacket = errors.New("proxy: malformed MQTT packet length")

// filter copies broker→client packet by packet so a PUBACK can be dropped
// whole; MQTT framing is a type byte and a 1–4 byte varint length.
func (p *Proxy) filter(dst io.Writer, src io.Reader) error {
	hdr := make([]byte, 5)
	buf := make([]byte, 0, 4096)
	for {
		if _, err := io.ReadFull(src, hdr[:1]); err != nil {
			return err
		}
		n, length, mult := 1, 0, 1
		for {
			if n == 5 {
				return errPacket
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
		if cap(buf) < n+length {
			buf = make([]byte, 0, n+length)
		}
		buf = append(buf[:0], hdr[:n]...)
		buf = buf[:n+length]
		if _, err := io.ReadFull(src, buf[n:]); err != nil {
			return err
		}
		if hdr[0]>>4 == 4 && p.swallow.Load() {
			p.swallowN.Add(1)
			continue
		}
		if _, err := dst.Write(buf); err != nil {
			return err
		}
	}
}
