package uplink

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// packet is an MQTT packet with its remaining length encoded.
func packet(typ byte, body []byte) []byte {
	out := []byte{typ}
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// The cap follows packet boundaries however the stream is cut: packets up
// to the cap pass whole, byte for byte; the first larger one fails the
// read at its header, before its body, and closes the connection.
func TestCapConn(t *testing.T) {
	ok1 := packet(0x30, bytes.Repeat([]byte{'a'}, 200)) // two-byte length
	ok2 := packet(0xd0, nil)                            // PINGRESP: no body
	ok3 := packet(0x30, bytes.Repeat([]byte{'b'}, 1000))
	big := packet(0x31, bytes.Repeat([]byte{'c'}, 1001))
	for _, chunk := range []int{1, 2, 3, 7, 4096} {
		a, b := net.Pipe()
		var over int64
		c := &capConn{Conn: a, max: 1000, over: func(_ byte, n int64) { over = n }}
		go func() {
			stream := append(append(append(append([]byte{}, ok1...), ok2...), ok3...), big...)
			for i := 0; i < len(stream); i += chunk {
				if _, err := b.Write(stream[i:min(i+chunk, len(stream))]); err != nil {
					return
				}
			}
		}()
		var got []byte
		buf := make([]byte, chunk)
		var err error
		for err == nil {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
		}
		want := append(append(append([]byte{}, ok1...), ok2...), ok3...)
		if !errors.Is(err, ErrPacketTooLarge) || over != 1001 {
			t.Fatalf("chunk %d: err %v, over %d", chunk, err, over)
		}
		// What passed is the good packets and at most the oversize one's
		// header bytes read in the same chunk, never its body.
		if !bytes.HasPrefix(got, want) && chunk == 1 {
			t.Fatalf("chunk %d: passed %d bytes, want the %d of the packets under the cap first", chunk, len(got), len(want))
		}
		if len(got) > len(want)+max(chunk, 3) || bytes.Contains(got, []byte("c")) {
			t.Fatalf("chunk %d: %d bytes passed, the oversize body among them", chunk, len(got))
		}
		if _, err := b.Write([]byte{0}); err == nil || err == io.ErrShortWrite {
			t.Fatalf("chunk %d: connection still open", chunk)
		}
		b.Close()
	}
}

func FuzzCapConnScan(f *testing.F) {
	f.Add(packet(0x30, []byte("hello")), int64(10))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}, int64(1<<20))
	f.Fuzz(func(t *testing.T, p []byte, max int64) {
		c := &capConn{max: max}
		_ = c.scan(p) // never panics; state stays in range
		if c.st < 0 || c.st > 2 || c.remain < 0 {
			t.Fatalf("state %d remain %d", c.st, c.remain)
		}
	})
}
