// Package datapath is tidegate's composition root for the data flow: it
// opens the buffer file, wires the filter → buffer pipeline (its one owner,
// which is also the buses' sink) and the uplink draining the buffer, and
// closes them in the order that loses nothing: pipeline (stores what the
// buses delivered and what the filter holds), uplink (sends what it can,
// says offline), buffer. The daemon starts and stops buses around it.
package datapath

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
	"tidegate/reading"
	"tidegate/uplink"
)

// Path is one open data path: the buffer file, the filter → buffer
// pipeline (package pipeline, its one owner, the buses' sink) and the
// uplink draining the buffer.
type Path struct {
	log *logrus.Logger
	// Own is the pipeline: hand it to every bus as its drivers.Sink.
	Own *pipeline.Pipeline
	Buf *buffer.Buffer
	// cur is the running uplink (Up).
	cur  atomic.Pointer[upRun]
	filt bool
	// store and queue are buf as the pipeline and the uplink see it
	// (faults_none.go).
	store pipeline.Store
	queue uplink.Queue

	// parts, set by the daemon (SetParts), lists the supervised parts for
	// the retained status.
	parts atomic.Pointer[func() []PartStatus]
	// status, set by the daemon (SetStatus), fills the retained status
	// from the daemon as it is now (the config in force, its health).
	status atomic.Pointer[func(*uplink.StatusInfo)]
	// opened is the config the running uplink was started with: its
	// connection proves that config's link settings only (the rollback
	// guard of a remote config asks Opened).
	// running is the config in effect: the birth message's hash, meters
	// and buses come from it, so after a reload it says what runs.
	running atomic.Pointer[config.Config]
}

// PartStates is the pipeline's and the uplink's part of Status.Parts.
func (p *Path) PartStates() []PartStatus {
	ps := p.Own.Stats()
	out := []PartStatus{{Name: "pipeline", State: ps.State, Restarts: ps.Restarts + ps.AppendErrs, Error: ps.LastError}}
	if up := p.Up(); up != nil {
		us := up.Stats()
		st := us.State
		if st == "" {
			st = uplink.StateRunning // Run not started yet: nothing has failed
		}
		out = append(out, PartStatus{Name: "uplink", State: st, Restarts: us.Restarts, Error: us.RestartError})
	}
	return out
}

// Open opens the data path of cfg: seen is called with every good poll as
// it arrives and every record once stored (the daemon's tail and last
// readings); version goes in the birth message.
func Open(cfg *config.Config, log *logrus.Logger, seen func(reading.Record), version string) (*Path, error) {
	p := &Path{log: log}
	buf, err := buffer.Open(cfg.Buffer.Path, buffer.Options{MaxBytes: int64(cfg.Buffer.MaxBytes), MaxRecords: int64(cfg.Buffer.MaxRecords), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", cfg.Buffer.Path, err)
	}
	p.Buf = buf
	p.store, p.queue = faultable(buf, log)
	po := pipeline.Options{Latency: cfg.Buffer.CommitLatency, Log: logrus.NewEntry(log).WithField("stage", "pipeline"),
		Seen: seen}
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
	r, err := p.newUplink(cfg, version)
	if err != nil {
		buf.Close()
		return nil, err
	}
	p.Own = pipeline.New(p.store, po)
	p.start(r)
	return p, nil
}

// upRun is one uplink and its goroutine; a reload of the mqtt settings
// replaces it whole (Path.cur), so readers never see half of a swap.
type upRun struct {
	up     *uplink.Uplink // nil when no broker is configured
	url    string         // the broker, password hidden
	opened *config.Config // the config it was made from
	cancel context.CancelFunc
	done   chan struct{}
}

// Up is the running uplink, nil when no broker is configured.
func (p *Path) Up() *uplink.Uplink {
	if r := p.cur.Load(); r != nil {
		return r.up
	}
	return nil
}

// newUplink makes the uplink for cfg (none without a broker); its birth
// message reads the running config, the buffer's seq base and the parts.
func (p *Path) newUplink(cfg *config.Config, version string) (*upRun, error) {
	if cfg.MQTT.Broker == "" {
		return &upRun{}, nil
	}
	uc := UplinkConfig(cfg, version)
	uc.Status = func() uplink.StatusInfo {
		i := UplinkConfig(p.running.Load(), version).Status()
		if f := p.status.Load(); f != nil {
			(*f)(&i)
		}
		i.SeqBase = p.Buf.Stats().SeqBase
		if f := p.parts.Load(); f != nil {
			for _, ps := range (*f)() {
				i.Parts = append(i.Parts, uplink.PartState{Name: ps.Name, State: ps.State, Restarts: ps.Restarts, Error: ps.Error})
			}
		}
		return i
	}
	up, err := uplink.New(uc, p.queue, logrus.NewEntry(p.log).WithField("stage", "uplink"))
	if err != nil {
		return nil, err
	}
	return &upRun{up: up, url: config.RedactURL(cfg.MQTT.Broker), opened: cfg}, nil
}

// start runs r's uplink and makes it the current one.
func (p *Path) start(r *upRun) {
	if r.up != nil {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done = cancel, make(chan struct{})
		up, log, done := r.up, p.log, r.done
		go func() {
			defer close(done)
			if err := up.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.WithError(err).Error("uplink stopped")
			}
		}()
	}
	p.cur.Store(r)
}

// stop stops r's uplink (it publishes offline). Nothing is lost: what it
// had not delivered is still in the buffer.
func (p *Path) stop(r *upRun) {
	if r == nil || r.up == nil || r.cancel == nil {
		return
	}
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(3 * time.Second):
		p.log.Warn("uplink did not stop in time")
	}
}

// RestartUplink applies new mqtt settings in-process: the old uplink
// stops, the new one starts from the buffer's cursor, so every record not
// yet acknowledged is sent again, in order. A config the uplink refuses
// leaves the old one running.
func (p *Path) RestartUplink(nc *config.Config, version string) error {
	if nc.MQTT.Broker != "" {
		if err := CheckUplink(nc); err != nil {
			return err
		}
	}
	r, err := p.newUplink(nc, version)
	if err != nil {
		return err
	}
	p.stop(p.cur.Load())
	p.running.Store(nc)
	p.start(r)
	p.log.WithField("broker", r.url).Info("reload: uplink restarted with the new mqtt settings")
	return nil
}

// CheckUplink says whether the uplink would start with cfg's mqtt section:
// `config validate` runs it, so a config it accepts is one `run` starts with.
func CheckUplink(cfg *config.Config) error {
	if cfg.MQTT.Broker == "" {
		return nil
	}
	return uplink.Check(UplinkConfig(cfg, ""))
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

// UplinkConfig is cfg's mqtt section in the uplink's terms.
func UplinkConfig(cfg *config.Config, version string) uplink.Config {
	m := cfg.MQTT
	uc := uplink.Config{
		Broker: brokerURL(m), ClientID: m.ClientID, Gateway: cfg.Gateway.ID, TopicPrefix: m.TopicPrefix,
		// The loader has the password already, from mqtt.password, its
		// password_file or TIDEGATE_MQTT_PASSWORD: read once, one way.
		Username: m.Username, Password: m.Password, Insecure: m.Insecure, QoS: 1,
		Ack: m.Ack, Commands: m.Commands,
		CommandKeys: m.CommandKeys, UnsignedValve: m.UnsignedValve == config.UnsignedAllow, UnsignedConfig: m.UnsignedConfig == config.UnsignedAllow, MaxPacket: int(m.MaxPacket),
		ReconnectMin: m.ReconnectMin, ReconnectMax: m.ReconnectMax,
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

// Stages are the stages wired, in data-flow order.
func (p *Path) Stages() []string {
	s := []string{"drivers"}
	if p.filt {
		s = append(s, "filter")
	}
	s = append(s, "buffer")
	if p.Up() != nil {
		s = append(s, "uplink")
	}
	return s
}

// Close stores what the buses delivered and what the filter holds, gives
// the uplink until ctx's deadline to send the backlog, stops it (it
// publishes offline) and closes the buffer.
func (p *Path) Close(ctx context.Context) error { return p.CloseKeep(ctx, false) }

// CarryInto appends what this buffer still holds to dst, in order (new
// seqs there), and acknowledges it here: a reload that moved the buffer
// file leaves nothing behind in the old one.
func (p *Path) CarryInto(dst *buffer.Buffer) (int, error) {
	n := 0
	for {
		recs, err := p.Buf.Read(0, 1000)
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
		if err := p.Buf.Ack(seqs...); err != nil {
			return n, err
		}
		n += len(recs)
	}
}

// CloseKeep is Close; keepBuffer leaves the buffer open (the caller
// carries its records elsewhere and closes it).
func (p *Path) CloseKeep(ctx context.Context, keepBuffer bool) error {
	perr := p.Own.Close(ctx)
	if perr != nil && !errors.Is(perr, pipeline.ErrNotDrained) {
		p.log.WithError(perr).Error("pipeline stopped with records not stored")
	}
	if up := p.Up(); up != nil {
		// Let a connected uplink catch up before it stops; a disconnected
		// one leaves the backlog in the buffer for the next start.
		last := p.Buf.Stats().LastSeq
		for up.Connected() && p.Buf.Cursor() < last {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
		p.stop(p.cur.Load())
	}
	if errors.Is(perr, pipeline.ErrNotDrained) {
		// The owner is still inside an append on a disk that hangs: closing
		// the buffer under it would wait for that append too.
		return perr
	}
	if keepBuffer {
		return perr
	}
	if err := p.Buf.Close(); err != nil {
		return err
	}
	return perr
}

// SetFilterConfig applies new filter settings live.
func (p *Path) SetFilterConfig(cfg *config.Config) {
	if !p.filt {
		return
	}
	if err := p.Own.SetFilter(cfg.FilterConfig()); err != nil {
		p.log.WithError(err).Error("new filter settings refused")
	}
}

// BufferStatus is the buffer part of the daemon's status.
func (p *Path) BufferStatus() BufferStatus {
	s := p.Buf.Stats()
	bs := BufferStatus{Wired: true, Depth: s.Depth, Bytes: s.FileBytes, Evicted: s.Evicted}
	if !s.Oldest.IsZero() {
		bs.OldestAgeS = time.Since(s.Oldest).Seconds()
	}
	return bs
}

// BrokerStatus is the uplink part of the daemon's status.
func (p *Path) BrokerStatus() BrokerStatus {
	r := p.cur.Load()
	if r == nil || r.up == nil {
		return BrokerStatus{}
	}
	s := r.up.Stats()
	return BrokerStatus{Wired: true, URL: r.url, Connected: s.Connected, Published: s.Records + s.Events, Acked: s.Records, AppAcksRefused: s.AppAcksRefused, Error: config.RedactURL(s.LastError)}
}

// SetStatus gives the retained status the daemon's view: the config in
// force and its health.
func (p *Path) SetStatus(f func(*uplink.StatusInfo)) { p.status.Store(&f) }

// Opened is the config the running uplink was started with (nil without
// one): a connection proves that config's link settings.
func (p *Path) Opened() *config.Config {
	if r := p.cur.Load(); r != nil && r.up != nil {
		return r.opened
	}
	return nil
}

// SetParts gives the birth message the daemon's list of supervised parts.
func (p *Path) SetParts(f func() []PartStatus) { p.parts.Store(&f) }

// Running is the config in effect.
func (p *Path) Running() *config.Config { return p.running.Load() }

// SetRunning records the config in effect after a reload: the birth message
// says its hash, meters and buses.
func (p *Path) SetRunning(c *config.Config) { p.running.Store(c) }

// BufferStatus is the durable queue's depth.
type BufferStatus struct {
	Wired      bool    `json:"wired"`
	Depth      uint64  `json:"depth"`
	OldestAgeS float64 `json:"oldest_age_s"`
	Bytes      int64   `json:"bytes"`
	Evicted    uint64  `json:"evicted"`
}

// BrokerStatus is the uplink's connection.
type BrokerStatus struct {
	Wired     bool   `json:"wired"`
	URL       string `json:"url"`
	Connected bool   `json:"connected"`
	Published uint64 `json:"published"`
	Acked     uint64 `json:"acked"`
	// AppAcksRefused counts application acks beyond what was published:
	// refused, nothing deleted (a service acking an event's id ahead of
	// the readings, or someone else publishing on .../ack).
	AppAcksRefused uint64 `json:"app_acks_refused"`
	Error          string `json:"error,omitempty"`
}

// PartStatus is one long-running part under supervision: every bus, the
// pipeline owner, the uplink. State is running, restarting (after an
// error, with Error and Restarts) or, for a bus, reopening its line.
type PartStatus struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Restarts uint64 `json:"restarts"`
	Error    string `json:"error,omitempty"`
}
