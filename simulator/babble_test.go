package simulator

import (
	"bytes"
	"net"
	"testing"
	"time"

	"go.bug.st/serial"
)

// TestBabble: a babbling bus streams its pattern at about its rate, on the
// pty and to a TCP client; and a bad babble config is refused.
func TestBabble(t *testing.T) {
	sim := startTestSim(t, `
buses:
  - {name: p, protocol: mbus, faults: {babble: {rate: 2000, pattern: "A5 5A"}}, meters: [{id: m, address: 1}]}
  - {name: t, protocol: cjt188, pty: false, tcp: "127.0.0.1:0", faults: {babble: {rate: 1000000}}, meters: [{id: c, address: "78330011223344"}]}
`)
	p := openPort(t, sim.Ports()["p"].Device, 2400)
	var got []byte
	buf := make([]byte, 256)
	start := time.Now()
	for time.Since(start) < time.Second {
		_ = p.SetReadTimeout(100 * time.Millisecond)
		n, _ := p.Read(buf)
		got = append(got, buf[:n]...)
	}
	if len(got) < 1000 || len(got) > 3000 || !bytes.Contains(got, []byte{0xA5, 0x5A, 0xA5, 0x5A}) || bytes.Contains(got, []byte{0xA5, 0xA5}) {
		t.Fatalf("pty: %d bytes in a second at 2000 B/s: % X...", len(got), got[:min(len(got), 16)])
	}
	c, err := net.Dial("tcp", sim.Ports()["t"].TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	if n < 100_000 {
		t.Fatalf("tcp: %d bytes in half a second at 1 MB/s", n)
	}
	for _, bad := range []string{`{babble: {rate: -1}}`, `{babble: {rate: 10, pattern: "xz"}}`, `{babble: {rate: 10, burst: 1s}}`} {
		if _, err := ParseConfig("x.yaml", []byte("buses: [{name: b, protocol: mbus, faults: "+bad+", meters: [{id: m, address: 1}]}]\n")); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestStuckMeter: a stuck meter keeps sending its answer back to back for
// stuck_for after a request, then falls quiet.
func TestStuckMeter(t *testing.T) {
	sim := startTestSim(t, `
buses:
  - {name: p, protocol: mbus, baud: 9600, meters: [{id: m, address: 1, faults: {stuck: 1, stuck_for: 600ms}}]}
`)
	p, err := serial.Open(sim.Ports()["p"].Device, &serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.EvenParity, StopBits: serial.OneStopBit})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Write([]byte{0x10, 0x5B, 0x01, 0x5C, 0x16}); err != nil { // REQ_UD2 to 1
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 256)
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond {
		_ = p.SetReadTimeout(100 * time.Millisecond)
		n, _ := p.Read(buf)
		got = append(got, buf[:n]...)
	}
	if len(got) == 0 || got[0] != 0x68 {
		t.Fatalf("no answer: % X", got)
	}
	l := int(got[1]) + 6
	copies := len(got) / l
	if copies < 3 || !bytes.Equal(got[:l], got[l:2*l]) {
		t.Fatalf("%d bytes, %d copies of a %d-byte answer", len(got), copies, l)
	}
	if sim.Bus("p").Stats().Babbled == 0 {
		t.Fatal("the repeats are not counted")
	}
}
