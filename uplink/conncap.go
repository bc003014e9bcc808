package uplink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ErrPacketTooLarge: the broker sent a packet larger than max_packet. Its
// fixed header announced the size; the body was never read, the connection
// was closed. MQTT 3.1.1 has no way to tell the broker a maximum, and paho
// would allocate the whole packet (a 100 MB publish on a command topic took
// 100 MB of a box's RAM each time), so the cap sits under paho, in the
// connection it reads from.
var ErrPacketTooLarge = errors.New("uplink: incoming MQTT packet over max_packet; connection closed")

// dial is paho's connection opener with the packet cap: plain TCP or TLS as
// the broker URL says (brokerURL normalised the scheme), wrapped in capConn.
func (u *Uplink) dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var c net.Conn
	var err error
	if uri.Scheme == "ssl" {
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
	} else {
		c, err = d.Dial("tcp", uri.Host)
	}
	if err != nil {
		return nil, err
	}
	return &capConn{Conn: c, max: int64(u.cfg.MaxPacket), over: u.packetTooLarge}, nil
}

func (u *Uplink) packetTooLarge(typ byte, size int64) {
	err := fmt.Errorf("%w: packet type %d of %d bytes (max_packet %d)", ErrPacketTooLarge, typ>>4, size, u.cfg.MaxPacket)
	u.setErr(err)
	u.count(func(s *Stats) { s.OversizePackets++ })
	u.log.WithError(err).Error("uplink: oversize packet refused; reconnecting (set the broker's message_size_limit too)")
}

// capConn follows the MQTT packet boundaries in what it reads: a fixed
// header byte, the remaining length (1-4 bytes, 7 bits each), then that
// many bytes. A remaining length over max fails the Read and closes the
// connection before any of the body is passed on.
type capConn struct {
	net.Conn
	max  int64
	over func(typ byte, size int64)

	mu     sync.Mutex
	st     int // 0: at a packet's first byte; 1: in its length; 2: in its body
	typ    byte
	length int64
	shift  uint
	remain int64
	err    error
}

func (c *capConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if serr := c.scan(p[:n]); serr != nil {
		c.err = serr
		_ = c.Conn.Close()
		return 0, serr
	}
	return n, err
}

func (c *capConn) scan(b []byte) error {
	for i := 0; i < len(b); {
		switch c.st {
		case 0:
			c.typ, c.length, c.shift, c.st = b[i], 0, 0, 1
			i++
		case 1:
			x := b[i]
			i++
			c.length |= int64(x&0x7f) << c.shift
			c.shift += 7
			if x&0x80 != 0 {
				if c.shift >= 28 {
					return fmt.Errorf("%w: malformed remaining length", ErrPacketTooLarge)
				}
				continue
			}
			if c.length > c.max {
				if c.over != nil {
					c.over(c.typ, c.length)
				}
				return fmt.Errorf("%w: %d bytes announced, max %d", ErrPacketTooLarge, c.length, c.max)
			}
			c.remain, c.st = c.length, 2
			if c.remain == 0 {
				c.st = 0
			}
		case 2:
			k := min(c.remain, int64(len(b)-i))
			i += int(k)
			c.remain -= k
			if c.remain == 0 {
				c.st = 0
			}
		}
	}
	return nil
}
