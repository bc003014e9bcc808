package simulator

import (
	"bytes"
	"testing"
	"time"

	"tidegate/protocol/modbus"
)

// At the same baud the receiver gets what was sent; at another it gets
// bytes that are not the frame (a UART at twice the speed sees each
// character as about two, at half the speed about half as many).
func TestResample(t *testing.T) {
	l := Line{Baud: 9600, DataBits: 8, Parity: "N", StopBits: 1}
	data := modbus.Request{Slave: 1, Function: 3, Address: 0, Quantity: 10}.Encode()
	if got := resample(data, l, 9600); !bytes.Equal(got, data) {
		t.Errorf("same baud: %X, want %X", got, data)
	}
	for _, to := range []int{2400, 4800, 19200, 38400} {
		got := resample(data, l, to)
		if bytes.Equal(got, data) || len(got) == 0 {
			t.Errorf("9600 -> %d: %X is the frame itself", to, got)
		}
		if to > 9600 && len(got) <= len(data) || to < 9600 && len(got) >= len(data) {
			t.Errorf("9600 -> %d: %d bytes from %d", to, len(got), len(data))
		}
	}
	// By hand: 0x55 at 9600 is the sender bits 0(start) 1 0 1 0 1 0 1 0
	// 1(stop). A receiver at 19200 samples its data bits at 1.5..8.5 of its
	// bit times = 0.75..4.25 sender bits, i.e. sender bits 0 1 1 2 2 3 3 4:
	// levels 0 1 1 0 0 1 1 0, LSB first 0x66.
	if got := resample([]byte{0x55}, l, 19200); len(got) == 0 || got[0] != 0x66 {
		t.Errorf("0x55 at 9600 read at 19200: %X, want 66 first", got)
	}
	e := Line{Baud: 2400, DataBits: 8, Parity: "E", StopBits: 1}
	if got := resample([]byte{0x10, 0x40, 0x01, 0x41, 0x16}, e, 2400); !bytes.Equal(got, []byte{0x10, 0x40, 0x01, 0x41, 0x16}) {
		t.Errorf("8E1 same baud: %X", got)
	}
}

// Through a real pty: a gateway at the bus's baud gets a valid answer; one
// at another baud gets garbled bytes, never the frame, and the bus counts it.
func TestWrongBaudThroughPTY(t *testing.T) {
	s := startTestSim(t, testConfig)
	dev := s.Ports()["rtu"].Device
	req := modbus.Request{Slave: 2, Function: 3, Address: 0, Quantity: 10}.Encode()
	n := modbus.ResponseLength(req)

	right := openPort(t, dev, 9600)
	resp, err := transact(right, req, n, time.Second)
	if err != nil {
		t.Fatalf("at 9600: %v", err)
	}
	if _, err := modbus.ParseReadResponse(resp, 2, 3, 10); err != nil {
		t.Fatalf("at 9600: %v (%X)", err, resp)
	}
	right.Close()

	wrong := openPort(t, dev, 19200)
	// Read for a while: the garbled reply is about twice as many bytes.
	got, _ := exchange(wrong, req, 500*time.Millisecond, nBytes(4*n))
	if len(got) == 0 {
		t.Fatal("at 19200: nothing came back; want garbled bytes")
	}
	if _, err := modbus.ParseReadResponse(got, 2, 3, 10); err == nil || bytes.Contains(got, resp[:3]) {
		t.Errorf("at 19200 the reply decoded (%X): the baud is ignored", got)
	}
	var wb int64
	for _, b := range s.buses {
		wb += b.Stats().WrongBaud
	}
	if wb == 0 {
		t.Error("the bus did not count the wrong-baud reply")
	}
}
