package uplink

import (
	"encoding/json"
	"errors"
	"time"
)

// Health is the gateway's health as the central service gets it without
// asking: on <prefix>/v1/<gateway>/health every health_every, and inside the
// retained status (schema/health.schema.json). The daemon fills it; the
// uplink stamps gateway and time.
type Health struct {
	Gateway       string         `json:"gateway"`
	Time          time.Time      `json:"time"`
	Version       string         `json:"version"`
	ConfigHash    string         `json:"config_hash"`
	UptimeS       float64        `json:"uptime_s"`
	Buses         []BusHealth    `json:"buses"`
	MetersOffline []MeterOffline `json:"meters_offline"`
	Buffer        BufferHealth   `json:"buffer"`
	Uplink        UplinkHealth   `json:"uplink"`
	Clock         ClockHealth    `json:"clock"`
}

// BusHealth is one bus's state and error counts since the daemon started.
type BusHealth struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Requests   uint64 `json:"requests"`
	Answers    uint64 `json:"answers"`
	Timeouts   uint64 `json:"timeouts"`
	CRCErrors  uint64 `json:"crc_errors"`
	Collisions uint64 `json:"collisions"`
	Errors     uint64 `json:"errors"`
	Error      string `json:"error,omitempty"`
}

// MeterOffline is a meter that does not answer, and why.
type MeterOffline struct {
	Meter  string     `json:"meter"`
	Bus    string     `json:"bus"`
	Since  *time.Time `json:"since,omitempty"`
	Reason string     `json:"reason"`
}

// BufferHealth is the store-and-forward queue and the disk it is on.
type BufferHealth struct {
	Depth            uint64  `json:"depth"`
	OldestUnsentAgeS float64 `json:"oldest_unsent_age_s"`
	Evicted          uint64  `json:"evicted"`
	Bytes            int64   `json:"bytes"`
	DiskFreeBytes    uint64  `json:"disk_free_bytes"`
}

// UplinkHealth is the broker connection.
type UplinkHealth struct {
	LastPublish    *time.Time `json:"last_publish,omitempty"` // the last message the broker acknowledged
	Connects       uint64     `json:"connects"`
	ConnectionLost uint64     `json:"connection_lost"`
}

// ClockHealth is the gateway's clock: whether the kernel says it is
// synchronised (NTP, GPS), and how far the meters' clocks are from it.
type ClockHealth struct {
	Synchronised bool               `json:"synchronised"`
	MaxErrorMS   float64            `json:"max_error_ms,omitempty"`
	Error        string             `json:"error,omitempty"`
	MeterOffsets []MeterClockOffset `json:"meter_offsets,omitempty"`
}

// MeterClockOffset is a meter's clock minus the gateway's, at its last
// reading that carried the meter's time.
type MeterClockOffset struct {
	Meter   string  `json:"meter"`
	OffsetS float64 `json:"offset_s"`
}

// ErrNotConnected: nothing can be published now.
var ErrNotConnected = errors.New("not connected to the broker")

// PublishHealth publishes h on .../health (QoS 1, not retained) and
// refreshes the retained status, so a service that only looks at retained
// messages sees the box's health and current config too. It waits at most
// the ack timeout for the broker.
func (u *Uplink) PublishHealth(h Health) error {
	c := u.currentClient()
	if c == nil || !u.connected.Load() {
		return ErrNotConnected
	}
	h.Gateway, h.Time = u.cfg.Gateway, time.Now().UTC()
	p, err := json.Marshal(h)
	if err != nil {
		return err
	}
	tok := c.Publish(u.t.base+"/health", 1, false, p)
	st := c.Publish(u.t.status, 1, true, u.statusPayload("online"))
	for _, t := range []interface {
		WaitTimeout(time.Duration) bool
		Error() error
	}{tok, st} {
		if !t.WaitTimeout(u.cfg.AckTimeout) {
			return errNoPuback
		}
		if err := t.Error(); err != nil {
			return err
		}
	}
	return nil
}

var errNoPuback = errors.New("no PUBACK in time")
