package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"
)

// ErrAppAck marks an unusable message on .../ack.
var ErrAppAck = errors.New("malformed application ack")

// appAck is what the central service publishes on .../ack in application
// mode: the highest id (or seq) up to which it has stored everything.
type appAck struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// ErrSubscribe means the broker refused or did not confirm a subscription
// the uplink needs (an ACL without the gateway's ack or command topic).
var ErrSubscribe = errors.New("subscription refused")

func (u *Uplink) subscribe(c paho.Client) {
	epoch := u.epoch.Load()
	// Its own status: a Last Will the broker publishes after this session's
	// "online" (the old session's, on a takeover) is answered (status.go).
	u.subscribeChecked(c, epoch, u.t.status, u.statusHandler(c))
	if u.cfg.Ack == AckApplication {
		u.subscribeChecked(c, epoch, u.t.ack, func(_ paho.Client, m paho.Message) { go u.onAppAck(m.Payload()) })
	}
	if u.cfg.Commands {
		u.subscribeChecked(c, epoch, u.t.cmd+"+", u.onCommandMessage)
	}
}

// subscribeChecked subscribes and checks the SUBACK: a refusal is an error
// (logged, in Stats.LastError and Stats.SubscribeErrs) and the
// subscription is tried again while the connection lasts. In application
// mode the ack subscription is what lets the buffer drain at all.
func (u *Uplink) subscribeChecked(c paho.Client, epoch uint64, topic string, h paho.MessageHandler) {
	go func() {
		for wait := time.Second; ; wait = min(2*wait, time.Minute) {
			tok := c.Subscribe(topic, 1, h)
			err := subackError(tok, u.cfg.AckTimeout)
			if err == nil {
				return
			}
			err = fmt.Errorf("%w: %s: %w", ErrSubscribe, topic, err)
			u.setErr(err)
			u.count(func(s *Stats) { s.SubscribeErrs++ })
			u.log.WithError(err).Error("uplink: subscription refused; retrying")
			time.Sleep(wait)
			if u.epoch.Load() != epoch || !c.IsConnectionOpen() || u.stopping.Load() {
				return // a new connection subscribes afresh
			}
		}
	}()
}

var errNoSuback = errors.New("no SUBACK in time")

// subackError says why a subscription did not take: paho's error, no
// SUBACK, or the broker's failure return code (0x80 and above).
func subackError(tok paho.Token, timeout time.Duration) error {
	if !tok.WaitTimeout(timeout) {
		return errNoSuback
	}
	if err := tok.Error(); err != nil {
		return err
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for topic, code := range st.Result() {
			if code >= 0x80 {
				return fmt.Errorf("broker returned 0x%02x for %s", code, topic)
			}
		}
	}
	return nil
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
	if pub := u.published.Load(); seq > pub {
		// Events go ahead of a readings backlog, so the highest id a
		// service has stored may be far above readings never sent; and
		// anyone who can publish on .../ack could empty the buffer.
		u.count(func(s *Stats) { s.AppAcksRefused++ })
		u.log.WithFields(logrus.Fields{"seq": seq, "published": pub}).Warn("uplink: application ack beyond what was published refused; nothing deleted")
		return
	}
	if err := u.q.AckUpTo(seq); err != nil {
		u.log.WithError(err).WithField("seq", seq).Warn("uplink: application ack refused by the buffer")
		return
	}
	u.count(func(s *Stats) { s.AppAcks++ })
}
