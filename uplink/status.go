package uplink

import (
	"encoding/json"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// onStatus sees the gateway's own retained status. A broker may publish
// the Last Will of the session this connection replaced after this
// connection's "online" (a takeover, or a keepalive timeout noticed late):
// the retained status would then say offline while the gateway is online.
// An "offline" seen while connected, and not Run's own at its stop, is
// answered with "online" again.
func (u *Uplink) onStatus(c paho.Client, p []byte) {
	var w wireStatus
	if json.Unmarshal(p, &w) != nil || w.State != "offline" || w.Gateway != u.cfg.Gateway {
		return
	}
	if !u.connected.Load() || u.stopping.Load() || !u.floorKnown.Load() {
		return
	}
	u.count(func(s *Stats) { s.StatusFixes++ })
	u.log.Info("uplink: a late Last Will said offline; publishing online again")
	go c.Publish(u.t.status, 1, true, u.statusPayload("online")) // not from paho's handler goroutine
}

// RefreshStatus publishes the retained "online" status again, with what
// Config.Status says now (the daemon calls it when a part changes state).
func (u *Uplink) RefreshStatus() {
	c := u.currentClient()
	if c == nil || !u.Connected() || u.stopping.Load() {
		return
	}
	c.Publish(u.t.status, 1, true, u.statusPayload("online"))
}
