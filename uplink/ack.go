package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ErrAppAck marks an unusable message on .../ack.
var ErrAppAck = errors.New("malformed application ack")

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

// parseAppAck returns the seq an application ack confirms; 0 means nothing.
func parseAppAck(gateway string, p []byte) (uint64, error) {
	var a appAck
	if err := json.Unmarshal(p, &a); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrAppAck, err)
	}
	if a.ID == "" {
		return a.Seq, nil
	}
	gw, s, ok := strings.Cut(a.ID, ":")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || gw != gateway {
		return 0, fmt.Errorf("%w: id %q is not %s:<seq>", ErrAppAck, a.ID, gateway)
	}
	return n, nil
}

func (u *Uplink) onAppAck(p []byte) {
	seq, err := parseAppAck(u.cfg.Gateway, p)
	if err != nil {
		u.log.WithError(err).Warn("uplink: application ack ignored")
		return
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
