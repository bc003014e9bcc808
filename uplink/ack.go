package uplink

import (
	"encoding/json"
	"strconv"
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// appAck is what the central service publishes on .../ack in application
// mode: the highest id (or seq) up to which it has stored everything.
type appAck struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

func (u *Uplink) subscribe(c paho.Client) {
	if u.cfg.Ack == AckApplication {
		c.Subscribe(u.t.ack, 1, func(_ paho.Client, m paho.Message) { u.onAppAck(m.Payload()) })
	}
	if u.cfg.Commands {
		c.Subscribe(u.t.cmd+"+", 1, func(c paho.Client, m paho.Message) { go u.onCommand(c, m.Topic(), m.Payload()) })
	}
}

func (u *Uplink) onAppAck(p []byte) {
	var a appAck
	if err := json.Unmarshal(p, &a); err != nil {
		u.log.WithError(err).Warn("uplink: malformed application ack ignored")
		return
	}
	seq := a.Seq
	if a.ID != "" {
		gw, s, ok := strings.Cut(a.ID, ":")
		n, err := strconv.ParseUint(s, 10, 64)
		if !ok || err != nil || gw != u.cfg.Gateway {
			u.log.WithField("id", a.ID).Warn("uplink: application ack for another gateway or malformed id ignored")
			return
		}
		seq = n
	}
	if seq == 0 {
		return
	}
	if err := u.q.AckUpTo(seq); err != nil {
		u.log.WithError(err).WithField("seq", seq).Warn("uplink: application ack refused by the buffer")
		return
	}
	u.count(func(s *Stats) { s.AppAcks++ })
}
