package daemon

import (
	"context"
	"errors"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
)

// ErrNoDrivers is returned for a read when this build has no driver for the bus.
var ErrNoDrivers = errors.New("no driver wired for this bus in this build")

// busRun is one running bus: its goroutine, its counters, a way to read now.
type busRun struct {
	cfg    config.Bus
	meters []config.Meter
	cancel context.CancelFunc
	done   chan struct{}
	err    string
}

// startBus starts polling one bus. Caller holds d.mu.
func (d *Daemon) startBus(b config.Bus, meters []config.Meter) {
	r := &busRun{cfg: b, meters: meters, done: make(chan struct{}), err: ErrNoDrivers.Error()}
	close(r.done)
	r.cancel = func() {}
	d.buses[b.Name] = r
}

func (r *busRun) stop(ctx context.Context) {
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

func (r *busRun) status() BusStatus {
	port := r.cfg.Device
	if port == "" {
		port = r.cfg.TCP
	}
	return BusStatus{Name: r.cfg.Name, Protocol: r.cfg.Protocol, Port: port, State: "not wired", Error: r.err}
}

func (r *busRun) readNow(ctx context.Context, meter string) (reading.Reading, error) {
	return reading.Reading{}, ErrNoDrivers
}
