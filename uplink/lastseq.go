package uplink

import (
	"encoding/json"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"
)

// No id leaves the box twice. A buffer file that was lost numbers its seqs
// afresh, from the clock, and a box without a real-time clock may boot at
// 1970: its new ids would repeat ids the receiver has and be dropped as
// duplicates. So the retained status carries last_seq, at least the
// highest seq this gateway may have published, and before it publishes
// anything the uplink reads its own retained status and, if another file
// published it (its seq_base differs), has the buffer number above it
// (Queue.EnsureAbove).
//
// The will is part of CONNECT and the broker publishes it, retained, in
// place of the status when the box dies: so it must carry a last_seq no
// record of that connection can exceed. Each connection claims a range
// (seqReserve past what the buffer has assigned) in its status and its
// will; the pump publishes nothing beyond the claim and reconnects to claim
// more when it gets there.

// seqReserve is how many seqs past the buffer's last one a connection may
// publish before it reconnects to claim more.
const seqReserve = 1 << 20

// claim moves the bound up for a new connection.
func (u *Uplink) claim() {
	want := u.q.LastSeq() + seqReserve
	for {
		b := u.bound.Load()
		if want <= b || u.bound.CompareAndSwap(b, want) {
			break
		}
	}
	u.count(func(s *Stats) { s.LastSeq = u.bound.Load() })
}

// statusHandler sees the gateway's own status topic: a retained message is
// handed to the floor reader; every message goes to onStatus.
func (u *Uplink) statusHandler(c paho.Client) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			select {
			case u.retained <- append([]byte(nil), m.Payload()...):
			default:
			}
		}
		// Never block paho: it hands messages over in arrival order
		// (SetOrderMatters(true), for commands), one handler at a time.
		go u.onStatus(c, m.Payload())
	}
}

// learnFloor runs on the first connection, before anything is published:
// it reads the retained status, has the buffer number above its last_seq,
// and then says online. If the floor is above what this connection's will
// claims, it reconnects so that the will carries it too.
func (u *Uplink) learnFloor(c paho.Client) {
	select {
	case <-u.retained:
	default:
	}
	fail := func(err error) {
		u.setErr(err)
		u.log.WithError(err).Warn("uplink: could not read the gateway's retained status; reconnecting")
		u.signalLost()
	}
	if err := subackError(c.Subscribe(u.t.status, 1, u.statusHandler(c)), u.cfg.AckTimeout); err != nil {
		fail(err)
		return
	}
	var floor uint64
	select {
	case p := <-u.retained:
		var w wireStatus
		// The same file going on (its seq_base) published those seqs
		// itself: sending its records again under their ids is at least
		// once, renumbering them would make duplicates nobody can drop.
		if json.Unmarshal(p, &w) == nil && w.Gateway == u.cfg.Gateway && w.SeqBase != u.q.SeqBase() {
			floor = w.LastSeq
		}
	case <-time.After(u.cfg.RetainedWait):
		// No retained status: a gateway that never published, or a broker
		// that lost it (the floor file beside the buffer covers that).
	}
	if floor > 0 {
		if err := u.q.EnsureAbove(floor); err != nil {
			fail(err)
			return
		}
	}
	u.floorKnown.Store(true)
	if floor >= u.bound.Load() {
		u.log.WithFields(logrus.Fields{"last_seq": floor, "claimed": u.bound.Load()}).
			Info("uplink: the retained status's last_seq is above this connection's claim; reconnecting to claim above it")
		u.signalLost()
		return
	}
	u.log.WithFields(logrus.Fields{"last_seq": floor, "claimed": u.bound.Load()}).Info("uplink: seqs numbered above the gateway's retained last_seq")
	c.Publish(u.t.status, 1, true, u.statusPayload("online"))
	u.subscribe(c)
	u.signal()
}
