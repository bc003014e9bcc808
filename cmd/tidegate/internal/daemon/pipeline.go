package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
	"tidegate/filter"
	"tidegate/pipeline"
	"tidegate/reading"
	"tidegate/uplink"
)

// dataPath is the daemon's end of the data flow: the buffer file, the
// filter → buffer pipeline (package pipeline, its one owner) and the uplink
// draining the buffer. Buses hand records to ingest.
type dataPath struct {
	log  *logrus.Logger
	hub  *hub
	own  *pipeline.Pipeline
	buf  *buffer.Buffer
	filt bool
	up   *uplink.Uplink // nil when no broker is configured
	url  string
	// opened is the config the uplink was started with: its connection
	// proves that config's link settings only (rollback.go). Whatever
	// replaces up with an uplink on new settings sets opened with it, or
	// the rollback guard never sees the new config reach its broker.
	opened *config.Config

	marks *memoryMarks

	upCancel context.CancelFunc
	upDone   chan struct{}
}

// status, when set, fills the retained status from the daemon as it is
// now (the config in force, its health).
func openDataPath(cfg *config.Config, log *logrus.Logger, h *hub, version string, status func(*uplink.StatusInfo)) (*dataPath, error) {
	p := &dataPath{log: log, hub: h, opened: cfg}
	h.gateway = cfg.Gateway.ID
	buf, err := buffer.Open(cfg.Buffer.Path, buffer.Options{MaxBytes: int64(cfg.Buffer.MaxBytes), MaxRecords: int64(cfg.Buffer.MaxRecords), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", cfg.Buffer.Path, err)
	}
	p.buf = buf
	p.marks = newMemoryMarks(buf, log)
	po := pipeline.Options{Latency: cfg.Buffer.CommitLatency, Log: logrus.NewEntry(log).WithField("stage", "pipeline"),
		Seen: func(rec reading.Record) { h.publish(rec); p.marks.stored(rec) }}
	if cfg.Filter.On() {
		fc := cfg.FilterConfig()
		if err := fc.Validate(); err != nil {
			buf.Close()
			return nil, err
		}
		po.Filter = filter.New(fc)
		p.filt = true
		for _, m := range cfg.Meters {
			po.Meters = append(po.Meters, m.ID)
		}
	}
	if cfg.MQTT.Broker != "" {
		uc := uplinkConfig(cfg, version)
		static := uc.Status
		uc.Status = func() uplink.StatusInfo {
			i := static()
			if status != nil {
				status(&i)
			}
			i.SeqBase = buf.Stats().SeqBase
			return i
		}
		up, err := uplink.New(uc, buf, logrus.NewEntry(log).WithField("stage", "uplink"))
		if err != nil {
			buf.Close()
			return nil, err
		}
		p.up, p.url = up, config.RedactURL(cfg.MQTT.Broker)
	}
	p.own = pipeline.New(buf, po)
	if p.up != nil {
		ctx, cancel := context.WithCancel(context.Background())
		p.upCancel, p.upDone = cancel, make(chan struct{})
		go func() {
			defer close(p.upDone)
			if err := p.up.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.WithError(err).Error("uplink stopped")
			}
		}()
	}
	return p, nil
}

func uplinkConfig(cfg *config.Config, version string) uplink.Config {
	m := cfg.MQTT
	uc := uplink.Config{
		Broker: m.Broker, ClientID: m.ClientID, Gateway: cfg.Gateway.ID, TopicPrefix: m.TopicPrefix,
		// The loader has the password already, from mqtt.password, its
		// password_file or TIDEGATE_MQTT_PASSWORD: read once, one way.
		Username: m.Username, Password: m.Password, Insecure: m.Insecure, QoS: 1,
		Ack: m.Ack, Commands: m.Commands, ReconnectMax: m.ReconnectMax,
		CommandKeys: m.CommandKeys, UnsignedValve: m.UnsignedValve == config.UnsignedAllow, UnsignedConfig: m.UnsignedConfig == config.UnsignedAllow, MaxPacket: int(m.MaxPacket),
		TLS:   uplink.TLSConfig{CAFile: m.TLS.CAFile, CertFile: m.TLS.CertFile, KeyFile: m.TLS.KeyFile, ServerName: m.TLS.ServerName},
		Batch: uplink.BatchConfig{MaxCount: m.Batch.MaxCount, MaxBytes: int(m.Batch.MaxBytes), MaxLatency: m.Batch.MaxLatency},
	}
	meters := make([]string, 0, len(cfg.Meters))
	for _, mt := range cfg.Meters {
		meters = append(meters, mt.ID)
	}
	buses := make([]string, 0, len(cfg.Buses))
	for _, b := range cfg.Buses {
		buses = append(buses, b.Name)
	}
	info := uplink.StatusInfo{Version: version, ConfigHash: cfg.Hash, Meters: meters, Buses: buses}
	uc.Status = func() uplink.StatusInfo { return info }
	return uc
}

func (p *dataPath) stages() []string {
	s := []string{"drivers"}
	if p.filt {
		s = append(s, "filter")
	}
	s = append(s, "buffer")
	if p.up != nil {
		s = append(s, "uplink")
	}
	return s
}

func (p *dataPath) ingest(rec reading.Record) { p.own.Ingest(rec) }

// close stores what the buses delivered and what the filter holds, gives
// the uplink until ctx's deadline to send the backlog, stops it (it
// publishes offline) and closes the buffer.
func (p *dataPath) close(ctx context.Context) error {
	perr := p.own.Close(ctx)
	if perr != nil && !errors.Is(perr, pipeline.ErrNotDrained) {
		p.log.WithError(perr).Error("pipeline stopped with records not stored")
	}
	if p.up != nil {
		// Let a connected uplink catch up before it stops; a disconnected
		// one leaves the backlog in the buffer for the next start.
		last := p.buf.Stats().LastSeq
		for p.up.Connected() && p.buf.Cursor() < last {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
		p.upCancel()
		select {
		case <-p.upDone:
		case <-time.After(3 * time.Second):
			p.log.Warn("uplink did not stop in time")
		}
	}
	if errors.Is(perr, pipeline.ErrNotDrained) {
		// The owner is still inside an append on a disk that hangs: closing
		// the buffer under it would wait for that append too.
		return perr
	}
	if err := p.buf.Close(); err != nil {
		return err
	}
	return perr
}

func (p *dataPath) setFilterConfig(cfg *config.Config) {
	if !p.filt {
		return
	}
	if err := p.own.SetFilter(cfg.FilterConfig()); err != nil {
		p.log.WithError(err).Error("new filter settings refused")
	}
}

func (p *dataPath) bufferStatus() BufferStatus {
	s := p.buf.Stats()
	bs := BufferStatus{Wired: true, Depth: s.Depth, Bytes: s.FileBytes, Evicted: s.Evicted}
	if !s.Oldest.IsZero() {
		bs.OldestAgeS = time.Since(s.Oldest).Seconds()
	}
	return bs
}

func (p *dataPath) brokerStatus() BrokerStatus {
	if p.up == nil {
		return BrokerStatus{}
	}
	s := p.up.Stats()
	return BrokerStatus{Wired: true, URL: p.url, Connected: s.Connected, Published: s.Records + s.Events, Acked: s.Records, Error: config.RedactURL(s.LastError)}
}
