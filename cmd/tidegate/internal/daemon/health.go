package daemon

import (
	"context"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"tidegate/uplink"
)

// health is what the box says of itself upstream (uplink.Health): the
// local status's buses and meters, the buffer and its disk, the uplink,
// the gateway's clock and the meters' offsets to it.
func (d *Daemon) health() uplink.Health {
	s := d.status()
	cfg := d.config()
	h := uplink.Health{Version: s.Version, ConfigHash: s.ConfigHash, UptimeS: s.UptimeS,
		Buses: []uplink.BusHealth{}, MetersOffline: []uplink.MeterOffline{}}
	for _, b := range s.Buses {
		h.Buses = append(h.Buses, uplink.BusHealth{Name: b.Name, State: b.State, Requests: b.Requests, Answers: b.Answers,
			Timeouts: b.Timeouts, CRCErrors: b.CRCErrors, Collisions: b.Collisions, Errors: b.Errors, Error: b.Error})
	}
	for _, m := range s.Meters {
		if m.State == "offline" {
			mo := uplink.MeterOffline{Meter: m.ID, Bus: m.Bus, Reason: "no answer"}
			if e, ok := d.hub.offlineOf(m.ID); ok {
				t := e.Time.UTC()
				mo.Since = &t
				if e.Message != "" {
					mo.Reason = e.Message
				}
			} else if m.Last != nil && m.Last.Error != "" {
				mo.Reason = m.Last.Error
			}
			h.MetersOffline = append(h.MetersOffline, mo)
		}
		if m.Last != nil && m.Last.MeterTime != nil && m.Last.GatewayTime != nil && m.Last.Storage == 0 {
			h.Clock.MeterOffsets = append(h.Clock.MeterOffsets, uplink.MeterClockOffset{Meter: m.ID,
				OffsetS: m.Last.MeterTime.Sub(*m.Last.GatewayTime).Round(time.Second).Seconds()})
		}
	}
	sort.Slice(h.Clock.MeterOffsets, func(i, j int) bool { return h.Clock.MeterOffsets[i].Meter < h.Clock.MeterOffsets[j].Meter })
	h.Buffer = uplink.BufferHealth{Depth: s.Buffer.Depth, OldestUnsentAgeS: s.Buffer.OldestAgeS, Evicted: s.Buffer.Evicted, Bytes: s.Buffer.Bytes}
	var fs unix.Statfs_t
	if unix.Statfs(filepath.Dir(cfg.Buffer.Path), &fs) == nil {
		h.Buffer.DiskFreeBytes = uint64(fs.Bavail) * uint64(fs.Bsize)
	}
	if p := d.path(); p != nil && p.Up() != nil {
		us := p.Up().Stats()
		h.Uplink = uplink.UplinkHealth{Connects: us.Connects, ConnectionLost: us.ConnectionLost}
		if !us.LastPublish.IsZero() {
			t := us.LastPublish.UTC()
			h.Uplink.LastPublish = &t
		}
	}
	cs := d.gatewayClock().State()
	h.Clock.Synchronised, h.Clock.MaxErrorMS = cs.Synchronised, cs.MaxErrorMS
	if cs.Err != nil {
		h.Clock.Error = cs.Err.Error()
	}
	return h
}

// statusInfo fills the retained status from the daemon as it is now: the
// config in force (a reload or a remote config changes it) and its health.
func (d *Daemon) statusInfo(i *uplink.StatusInfo) {
	cfg := d.config()
	i.ConfigHash = cfg.Hash
	i.Meters, i.Buses = i.Meters[:0:0], i.Buses[:0:0]
	for _, m := range cfg.Meters {
		i.Meters = append(i.Meters, m.ID)
	}
	for _, b := range cfg.Buses {
		i.Buses = append(i.Buses, b.Name)
	}
	if d.ready.Load() { // the uplink may connect before Run has its data path
		h := d.health()
		i.Health = &h
	}
}

// publishHealth sends the health message and refreshes the retained status
// every mqtt.health_every (read anew each time: a reload may change it),
// and soon after a remote config changed the running one.
func (d *Daemon) publishHealth(ctx context.Context) {
	last := ""
	for {
		every := d.config().MQTT.HealthEvery
		t := time.NewTimer(min(every, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		cfg := d.config()
		up := d.path().Up()
		if up == nil || !up.Connected() {
			continue
		}
		if cfg.Hash == last && time.Since(d.lastHealth()) < every {
			continue
		}
		if err := up.PublishHealth(d.health()); err != nil {
			d.log.WithError(err).Debug("health not published")
			continue
		}
		last = cfg.Hash
		d.mu.Lock()
		d.healthAt = time.Now()
		d.mu.Unlock()
	}
}

func (d *Daemon) lastHealth() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.healthAt
}
