package cjt188

import (
	"bytes"
	"context"
	"testing"

	"tidegate/drivers/link"
	p "tidegate/protocol/cjt188"
	"tidegate/simulator"
)

// FuzzMasterAnswer: whatever answers a read, and then whatever the line
// repeats for ever (a babbler, a stuck transmitter), the master does not
// panic or hang, reads at most its byte cap a transaction, holds at most a
// frame and a read, takes a reply only from the polled meter, and reads
// the meter cleanly once the line is quiet again.
func FuzzMasterAnswer(f *testing.F) {
	meter := simMeter(&testing.T{}, simulator.CJTMeterConfig{ID: "a", Address: addrA}, 12.5, 0)
	req, _ := p.Encode(p.ReadData(p.TypeColdWater, addrA, p.DICurrent, p.HighFirst, 1))
	good := meter.Respond(req, t0)
	f.Add(good, []byte{})
	f.Add([]byte{}, good)                             // a stuck transmitter
	f.Add([]byte{0xFE, 0xFE}, []byte{0x68})           // start bytes for ever
	f.Add(bytes.Repeat([]byte{0x68}, 4000), []byte{}) // oversized
	f.Add(good[:20], bytes.Repeat([]byte{0x00, 0xFF, 0x16}, 100))
	f.Add([]byte{0x68, 0x10}, []byte{0xE5, 0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78, 0x81, 0xFF})
	f.Fuzz(func(t *testing.T, answer, endless []byte) {
		l := &memLine{cfg: lineCfg, endless: endless}
		first := true
		l.respond = func(req []byte) []byte {
			if first {
				first = false
				return answer
			}
			return meter.Respond(req, t0)
		}
		m := NewMaster(l, Options{}, nil)
		mt := Meter{ID: "a", Address: addrA}
		ex, err := m.ReadData(context.Background(), mt, p.DICurrent)
		if err == nil && ex.Reply.Address != addrA {
			t.Fatalf("reply from %s taken", ex.Reply.Address)
		}
		if err != nil && link.Classify(err) != link.FaultMeter && link.Classify(err) != link.FaultLine {
			t.Fatalf("error neither the meter's nor the line's: %v", err)
		}
		if capped := len(req) + 2*maxFrame + noiseMargin + len(m.rd); l.read > capped {
			t.Fatalf("read %d endless bytes in one transaction, cap %d", l.read, capped)
		}
		if cap(m.buf) > 4096 {
			t.Fatalf("holds %d bytes", cap(m.buf))
		}
		l.endless, l.in = nil, nil
		if _, err := m.ReadData(context.Background(), mt, p.DICurrent); err != nil {
			t.Fatalf("clean read after it: %v", err)
		}
	})
}
