package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
	"tidegate/filter"
	"tidegate/reading"
	"tidegate/uplink"
)

// filterStateKey is where a meter's filter state lives in the buffer's side state.
func filterStateKey(meter string) string { return "filter/" + meter }

// pipeline is filter → buffer → uplink behind the buses. Buses hand records
// to ingest; one goroutine moves them on so a slow disk never blocks a bus
// for longer than the queue's depth.
type pipeline struct {
	log     *logrus.Logger
	hub     *hub
	in      chan reading.Record
	mu      sync.Mutex
	closing bool
	stats   pipeStats

	fmu  sync.Mutex // the filter; not mu, which ingest holds while the queue is full
	buf  *buffer.Buffer
	filt *filter.Filter // nil when the filter is off
	up   *uplink.Uplink // nil when no broker is configured
	url  string

	upCancel context.CancelFunc
	upDone   chan struct{}
	out      filter.Output
}

type pipeStats struct {
	ingested   uint64
	unqueued   uint64 // records dropped because the pipeline was already closing
	appendErrs uint64
}

func openPipeline(cfg *config.Config, log *logrus.Logger, h *hub, version string) (*pipeline, error) {
	p := &pipeline{log: log, hub: h, in: make(chan reading.Record, 4096)}
	buf, err := buffer.Open(cfg.Buffer.Path, buffer.Options{MaxBytes: int64(cfg.Buffer.MaxBytes), MaxRecords: int64(cfg.Buffer.MaxRecords), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", cfg.Buffer.Path, err)
	}
	p.buf = buf
	if cfg.Filter.On() {
		fc := cfg.FilterConfig()
		if err := fc.Validate(); err != nil {
			buf.Close()
			return nil, err
		}
		p.filt = filter.New(fc)
		for _, m := range cfg.Meters {
			if st, err := buf.State(filterStateKey(m.ID)); err == nil && st != nil {
				if err := p.filt.SetState(m.ID, st); err != nil {
					log.WithFields(logrus.Fields{"meter": m.ID, "error": err}).Warn("filter state not restored; learning afresh")
				}
			}
		}
	}
	if cfg.MQTT.Broker != "" {
		uc := uplinkConfig(cfg, version)
		up, err := uplink.New(uc, buf, logrus.NewEntry(log).WithField("stage", "uplink"))
		if err != nil {
			buf.Close()
			return nil, err
		}
		p.up, p.url = up, cfg.MQTT.Broker
		ctx, cancel := context.WithCancel(context.Background())
		p.upCancel, p.upDone = cancel, make(chan struct{})
		go func() {
			defer close(p.upDone)
			if err := up.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
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
		Username: m.Username, PasswordFile: m.PasswordFile, Insecure: m.Insecure, QoS: 1,
		Ack: m.Ack, Commands: m.Commands,
		TLS:   uplink.TLSConfig{CAFile: m.TLS.CAFile, CertFile: m.TLS.CertFile, KeyFile: m.TLS.KeyFile, ServerName: m.TLS.ServerName},
		Batch: uplink.BatchConfig{MaxCount: m.Batch.MaxCount, MaxBytes: int(m.Batch.MaxBytes), MaxLatency: m.Batch.MaxLatency},
	}
	if m.PasswordFile == "" && m.Password != "" {
		uc.PasswordEnv = "TIDEGATE_MQTT_PASSWORD"
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

func (p *pipeline) stages() []string {
	s := []string{"drivers"}
	if p.filt != nil {
		s = append(s, "filter")
	}
	s = append(s, "buffer")
	if p.up != nil {
		s = append(s, "uplink")
	}
	return s
}

func (p *pipeline) ingest(rec reading.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		p.stats.unqueued++
		return
	}
	p.stats.ingested++
	p.in <- rec
}

func (p *pipeline) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case rec, ok := <-p.in:
			if !ok {
				return
			}
			p.handle(rec)
		}
	}
}

// handle moves one record through the filter into the buffer. Good readings
// go through the filter, which may hold them back up to its window and
// releases them with their filtered values; its state is saved after each so
// a restart loses none of what it holds. Failed polls, billing reads and
// events go straight to the buffer (a billing read is also filtered, as an
// interval reading).
func (p *pipeline) handle(rec reading.Record) {
	var recs []reading.Record
	var states []buffer.State
	// A due-date value (Storage 1) is the meter's own frozen total: never
	// an interval of use, so it goes to the buffer unfiltered.
	if rec.Reading != nil && rec.Reading.Quality == reading.QualityGood && rec.Reading.Storage == 0 && p.filt != nil {
		// Status and tail show the poll at once; its filtered values follow
		// when the filter releases the interval.
		if j, ok := FromRecord(rec); ok {
			p.hub.publish(j)
		}
		if rec.Kind == reading.KindBilling {
			recs = append(recs, rec)
		}
		p.fmu.Lock()
		p.out.Reset()
		p.filt.PushTo(&p.out, *rec.Reading)
		recs = p.appendOutput(recs, &p.out)
		st, err := p.filt.State(rec.Reading.Meter)
		p.fmu.Unlock()
		if err != nil || st == nil {
			p.log.WithFields(logrus.Fields{"meter": rec.Reading.Meter, "error": err}).Warn("filter state not saved")
		} else {
			// In the records' own transaction: after a crash the filter
			// resumes exactly where its records end, neither re-emitting
			// an interval under a new seq nor losing one.
			states = append(states, buffer.State{Key: filterStateKey(rec.Reading.Meter), Value: st})
		}
	} else {
		recs = append(recs, rec)
	}
	p.store(recs, states)
}

func (p *pipeline) appendOutput(recs []reading.Record, o *filter.Output) []reading.Record {
	for i := range o.Readings {
		r := o.Readings[i]
		recs = append(recs, reading.Record{Kind: reading.KindReading, Reading: &r})
	}
	for i := range o.Days {
		d := o.Days[i]
		recs = append(recs, reading.Record{Kind: reading.KindSummary, Summary: &d})
	}
	for i := range o.Events {
		e := o.Events[i]
		recs = append(recs, reading.Record{Kind: reading.KindEvent, Event: &e})
	}
	return recs
}

func (p *pipeline) store(recs []reading.Record, states []buffer.State) {
	if len(recs) == 0 && len(states) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seqs, err := p.buf.AppendWithState(ctx, states, recs...)
	if err != nil {
		p.mu.Lock()
		p.stats.appendErrs++
		p.mu.Unlock()
		p.log.WithFields(logrus.Fields{"records": len(recs), "error": err}).Error("buffer append failed")
	}
	for i, rec := range recs {
		if i < len(seqs) {
			rec.Seq = seqs[i]
		}
		if j, ok := FromRecord(rec); ok {
			p.hub.publish(j)
		}
	}
}

// close drains what the buses delivered, flushes the filter into the
// buffer, gives the uplink until ctx's deadline to send the backlog, stops
// it (it publishes offline) and closes the buffer.
func (p *pipeline) close(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	for drained := false; !drained; {
		select {
		case rec := <-p.in:
			p.handle(rec)
		default:
			drained = true
		}
	}
	if p.filt != nil {
		p.fmu.Lock()
		out := p.filt.Flush()
		recs := p.appendOutput(nil, &out)
		meters := p.filt.Meters()
		var states []buffer.State
		for _, m := range meters {
			if st, err := p.filt.State(m); err == nil && st != nil {
				states = append(states, buffer.State{Key: filterStateKey(m), Value: st})
			}
		}
		p.fmu.Unlock()
		p.store(recs, states)
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
	return p.buf.Close()
}

func (p *pipeline) setFilterConfig(cfg *config.Config) {
	if p.filt == nil {
		return
	}
	fc := cfg.FilterConfig()
	if err := fc.Validate(); err != nil {
		p.log.WithError(err).Error("new filter settings refused")
		return
	}
	p.fmu.Lock()
	defer p.fmu.Unlock()
	nf := filter.New(fc)
	for _, m := range p.filt.Meters() {
		if st, err := p.filt.State(m); err == nil && st != nil {
			_ = nf.SetState(m, st)
		}
	}
	p.filt = nf
}

func (p *pipeline) setMeters(*config.Config) {}

func (p *pipeline) bufferStatus() BufferStatus {
	s := p.buf.Stats()
	bs := BufferStatus{Wired: true, Depth: s.Depth, Bytes: s.FileBytes, Evicted: s.Evicted}
	if !s.Oldest.IsZero() {
		bs.OldestAgeS = time.Since(s.Oldest).Seconds()
	}
	return bs
}

func (p *pipeline) brokerStatus() BrokerStatus {
	if p.up == nil {
		return BrokerStatus{}
	}
	s := p.up.Stats()
	return BrokerStatus{Wired: true, URL: p.url, Connected: s.Connected, Published: s.Records + s.Events, Acked: s.Records, Error: s.LastError}
}
