package daemon

import (
	"context"
	"sync"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
)

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
}

type pipeStats struct {
	ingested uint64
	unqueued uint64 // records dropped because the pipeline was already closing
}

func openPipeline(cfg *config.Config, log *logrus.Logger, h *hub, version string) (*pipeline, error) {
	return &pipeline{log: log, hub: h, in: make(chan reading.Record, 1024)}, nil
}

func (p *pipeline) stages() []string { return []string{"drivers"} }

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

func (p *pipeline) handle(rec reading.Record) {
	if j, ok := FromRecord(rec); ok {
		p.hub.publish(j)
	}
}

// close drains what the buses delivered and stops every stage.
func (p *pipeline) close(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	for {
		select {
		case rec := <-p.in:
			p.handle(rec)
			continue
		default:
		}
		break
	}
	return nil
}

func (p *pipeline) setFilterConfig(*config.Config) {}
func (p *pipeline) setMeters(*config.Config)       {}

func (p *pipeline) bufferStatus() BufferStatus { return BufferStatus{} }
func (p *pipeline) brokerStatus() BrokerStatus { return BrokerStatus{} }
