package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
	"tidegate/filter"
	"tidegate/pipeline"
	"tidegate/uplink"
)

// dataPath is the daemon's end of the data flow: the buffer file, the
// filter → buffer pipeline (package pipeline, its one owner) and the uplink
// draining the buffer. Buses hand records to the pipeline, their sink.
type dataPath struct {
	log  *logrus.Logger
	hub  *hub
	own  *pipeline.Pipeline
	buf  *buffer.Buffer
	filt bool
	up   *uplink.Uplink // nil when no broker is configured
	url  string
	// store and queue are buf as the pipeline and the uplink see it
	// (faults_none.go).
	store pipeline.Store
	queue uplink.Queue

	upCancel context.CancelFunc
	upDone   chan struct{}

	// parts, set by the daemon, lists the supervised parts for the
	// retained status.
	parts atomic.Pointer[func() []PartStatus]
	// running is the config in effect: the birth message's hash, meters
	// and buses come from it, so after a reload it says what runs.
	running atomic.Pointer[config.Config]
}

// partStates is the pipeline's and the uplink's part of Status.Parts.
func (p *dataPath) partStates() []PartStatus {
	ps := p.own.Stats()
	out := []PartStatus{{Name: "pipeline", State: ps.State, Restarts: ps.Restarts + ps.AppendErrs, Error: ps.LastError}}
	if p.up != nil {
		us := p.up.Stats()
		st := us.State
		if st == "" {
			st = uplink.StateRunning // Run not started yet: nothing has failed
		}
		out = append(out, PartStatus{Name: "uplink", State: st, Restarts: us.Restarts, Error: us.RestartError})
	}
	return out
}

func openDataPath(cfg *config.Config, log *logrus.Logger, h *hub, version string) (*dataPath, error) {
	p := &dataPath{log: log, hub: h}
	h.gateway = cfg.Gateway.ID
	buf, err := buffer.Open(cfg.Buffer.Path, buffer.Options{MaxBytes: int64(cfg.Buffer.MaxBytes), MaxRecords: int64(cfg.Buffer.MaxRecords), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", cfg.Buffer.Path, err)
	}
	p.buf = buf
	p.store, p.queue = faultable(buf, log)
	po := pipeline.Options{Latency: cfg.Buffer.CommitLatency, Log: logrus.NewEntry(log).WithField("stage", "pipeline"),
		Seen: h.publish}
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
	p.running.Store(cfg)
	if err := p.newUplink(cfg, version); err != nil {
		buf.Close()
		return nil, err
	}
	p.own = pipeline.New(p.store, po)
	p.startUplink()
	return p, nil
}

// newUplink makes the uplink for cfg (none without a broker); its birth
// message reads the running config, the buffer's seq base and the parts.
func (p *dataPath) newUplink(cfg *config.Config, version string) error {
	p.up, p.url = nil, ""
	if cfg.MQTT.Broker == "" {
		return nil
	}
	uc := uplinkConfig(cfg, version)
	uc.Status = func() uplink.StatusInfo {
		i := uplinkConfig(p.running.Load(), version).Status()
		i.SeqBase = p.buf.Stats().SeqBase
		if f := p.parts.Load(); f != nil {
			for _, ps := range (*f)() {
				i.Parts = append(i.Parts, uplink.PartState{Name: ps.Name, State: ps.State, Restarts: ps.Restarts, Error: ps.Error})
			}
		}
		return i
	}
	up, err := uplink.New(uc, p.queue, logrus.NewEntry(p.log).WithField("stage", "uplink"))
	if err != nil {
		return err
	}
	p.up, p.url = up, cfg.MQTT.Broker
	return nil
}

func (p *dataPath) startUplink() {
	if p.up == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.upCancel, p.upDone = cancel, make(chan struct{})
	up, log := p.up, p.log
	go func() {
		defer close(p.upDone)
		if err := up.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.WithError(err).Error("uplink stopped")
		}
	}()
}

// stopUplink stops the running uplink (it publishes offline). Nothing is
// lost: what it had not delivered is still in the buffer.
func (p *dataPath) stopUplink() {
	if p.up == nil {
		return
	}
	p.upCancel()
	select {
	case <-p.upDone:
	case <-time.After(3 * time.Second):
		p.log.Warn("uplink did not stop in time")
	}
}

// restartUplink applies new mqtt settings in-process: the old uplink
// stops, the new one starts from the buffer's cursor, so every record not
// yet acknowledged is sent again, in order. A config the uplink refuses
// leaves the old one running.
func (p *dataPath) restartUplink(nc *config.Config, version string) error {
	if nc.MQTT.Broker != "" {
		if err := CheckUplink(nc); err != nil {
			return err
		}
	}
	old, oldURL, oldCancel, oldDone := p.up, p.url, p.upCancel, p.upDone
	p.running.Store(nc)
	if err := p.newUplink(nc, version); err != nil {
		p.up, p.url = old, oldURL
		return err
	}
	nu, nurl := p.up, p.url
	p.up, p.upCancel, p.upDone = old, oldCancel, oldDone
	p.stopUplink()
	p.up, p.url = nu, nurl
	p.startUplink()
	p.log.WithField("broker", nc.MQTT.Broker).Info("reload: uplink restarted with the new mqtt settings")
	return nil
}

// CheckUplink says whether the uplink would start with cfg's mqtt section:
// `config validate` runs it, so a config it accepts is one `run` starts with.
func CheckUplink(cfg *config.Config) error {
	if cfg.MQTT.Broker == "" {
		return nil
	}
	return uplink.Check(uplinkConfig(cfg, ""))
}

// brokerURL is mqtt.broker as the uplink takes it: tls.enabled turns a
// plain scheme into its TLS one (tcp:// and mqtt:// into ssl://, ws:// into
// wss://), as the file's comment promises.
func brokerURL(m config.MQTT) string {
	if !m.TLS.Enabled {
		return m.Broker
	}
	for plain, secure := range map[string]string{"tcp://": "ssl://", "mqtt://": "ssl://", "ws://": "wss://"} {
		if rest, ok := strings.CutPrefix(m.Broker, plain); ok {
			return secure + rest
		}
	}
	return m.Broker
}

func uplinkConfig(cfg *config.Config, version string) uplink.Config {
	m := cfg.MQTT
	uc := uplink.Config{
		Broker: brokerURL(m), ClientID: m.ClientID, Gateway: cfg.Gateway.ID, TopicPrefix: m.TopicPrefix,
		// The loader has the password already, from mqtt.password, its
		// password_file or TIDEGATE_MQTT_PASSWORD: read once, one way.
		Username: m.Username, Password: m.Password, Insecure: m.Insecure, QoS: 1,
		Ack: m.Ack, Commands: m.Commands, ReconnectMin: m.ReconnectMin, ReconnectMax: m.ReconnectMax,
		ReconnectJitter: m.ReconnectJitter, ConnectGap: m.ConnectGap, ProbeInterval: m.ProbeInterval,
		RetainedWait: m.RetainedWait, RestartMin: m.RestartMin, RestartMax: m.RestartMax,
		AckTimeout: m.AckTimeout, KeepAlive: m.KeepAlive, HistoricalAfter: m.HistoricalAfter, MaxInflight: m.MaxInflight,
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

// close stores what the buses delivered and what the filter holds, gives
// the uplink until ctx's deadline to send the backlog, stops it (it
// publishes offline) and closes the buffer.
func (p *dataPath) close(ctx context.Context) error { return p.closeKeep(ctx, false) }

// carryInto appends what this buffer still holds to dst, in order (new
// seqs there), and acknowledges it here: a reload that moved the buffer
// file leaves nothing behind in the old one.
func (p *dataPath) carryInto(dst *buffer.Buffer) (int, error) {
	n := 0
	for {
		recs, err := p.buf.Read(0, 1000)
		if err != nil || len(recs) == 0 {
			return n, err
		}
		seqs := make([]uint64, len(recs))
		for i := range recs {
			seqs[i], recs[i].Seq = recs[i].Seq, 0
		}
		if _, err := dst.Append(context.Background(), recs...); err != nil {
			return n, err
		}
		if err := p.buf.Ack(seqs...); err != nil {
			return n, err
		}
		n += len(recs)
	}
}

// closeKeep is close; keepBuffer leaves the buffer open (the caller
// carries its records elsewhere and closes it).
func (p *dataPath) closeKeep(ctx context.Context, keepBuffer bool) error {
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
		p.stopUplink()
	}
	if errors.Is(perr, pipeline.ErrNotDrained) {
		// The owner is still inside an append on a disk that hangs: closing
		// the buffer under it would wait for that append too.
		return perr
	}
	if keepBuffer {
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
	return BrokerStatus{Wired: true, URL: p.url, Connected: s.Connected, Published: s.Records + s.Events, Acked: s.Records, Error: s.LastError}
}
