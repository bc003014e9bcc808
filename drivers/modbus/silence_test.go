//go:build linux

package modbus

import (
	"testing"
	"time"

	"github.com/creack/pty"

	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
)

// TestSilenceFromLastByte: on a real pty at 9600 baud, with the slave's
// answer arriving a character at a time, the next request goes out one
// 3.5-character silence after the answer's last byte arrived: never
// sooner, and (at its best, so a busy machine cannot fail it) within
// 0.3 ms of it. Before, the silence was counted from when a read that had
// slept past the last byte returned, and itself slept in whole
// milliseconds: the best of 30 polls was 0.54 ms late.
func TestSilenceFromLastByte(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	l, err := link.Open(link.Config{Device: s.Name(), Baud: 9600, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(l, false, 5*time.Second) // a generous timeout: a busy machine may stall the slave
	defer c.Close()
	char := l.Config().CharTime()
	gap := char * 7 / 2

	const polls = 30
	type exchange struct{ lastByte, request time.Time }
	ex := make(chan exchange, polls)
	go func() {
		// The slave: takes each request whole, answers after a 2 ms
		// turnaround, one character per character time.
		var prev time.Time
		buf := make([]byte, 64)
		var req []byte
		for {
			n, err := m.Read(buf)
			if err != nil {
				close(ex)
				return
			}
			if len(req) == 0 && !prev.IsZero() {
				ex <- exchange{prev, time.Now()}
			}
			req = append(req, buf[:n]...)
			if len(req) < 8 {
				continue
			}
			r, err := pmodbus.ParseRequest(req[:8])
			req = req[:0]
			if err != nil {
				continue
			}
			regs := make([]uint16, r.Quantity)
			answer := pmodbus.ReadResponse(r.Slave, r.Function, regs)
			time.Sleep(2 * time.Millisecond)
			start := time.Now()
			for i := range answer {
				time.Sleep(time.Until(start.Add(time.Duration(i) * char)))
				if i == len(answer)-1 {
					prev = time.Now() // the last byte arrives no sooner than this
				}
				m.Write(answer[i : i+1])
			}
		}
	}()
	for i := range polls + 1 {
		if _, err := c.ReadRegisters(1, pmodbus.FuncReadHoldingRegisters, 0, 17); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
	}
	best := time.Hour
	for range polls {
		e := <-ex
		d := e.request.Sub(e.lastByte)
		if d < gap {
			t.Fatalf("request %v after the last byte, inside the %v silence", d, gap)
		}
		best = min(best, d-gap)
	}
	t.Logf("best of %d: the request went out %v after the silence", polls, best)
	if best > 300*time.Microsecond {
		t.Fatalf("best of %d polls: the request went out %v after the %v silence ended, want within 0.3 ms", polls, best, gap)
	}
}
