package simulator

import (
	"math/rand/v2"
	"testing"
	"time"
)

type fixedReply []byte

func (f fixedReply) Respond([]byte, time.Time) []byte { return f }

// A CRC fault on a one-byte M-Bus ACK once indexed past the reply (found by
// the drivers' tests): every fault must handle replies of any length.
func TestFaultsOnShortReplies(t *testing.T) {
	for _, reply := range [][]byte{{0xE5}, {0x01, 0x83}, {0x68, 0x03, 0x03, 0x68, 0x08, 0x05, 0x72, 0x7F, 0x16}} {
		for _, f := range []MeterFaults{{CRC: 1}, {Truncated: 1}, {WrongAddress: 1}, {Exception: 1}, {Late: 1}} {
			for _, proto := range []string{ProtocolMBus, ProtocolModbus} {
				m := &faulty{inner: fixedReply(reply), f: f, protocol: proto, rng: rand.New(rand.NewPCG(1, 2))}
				out, _ := m.RespondDelayed([]byte{1, 3, 0, 0, 0, 1}, time.Now())
				if out == nil {
					t.Errorf("%s %+v on % X: no reply", proto, f, reply)
				}
				if f.CRC == 1 && string(out) == string(reply) {
					t.Errorf("%s CRC fault left % X unchanged", proto, reply)
				}
			}
		}
	}
}
