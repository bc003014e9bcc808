package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/drivers"
	"tidegate/drivers/link"
	"tidegate/reading"
)

// ErrNoDrivers is returned for a read on a bus that could not be started.
var ErrNoDrivers = errors.New("bus not running")

// ErrNoDataPath: a bus started before the daemon's data path is open has
// nowhere to deliver.
var ErrNoDataPath = errors.New("no data path open")

// busRun is one running bus: its goroutine, its counters, a way to read now.
type busRun struct {
	cfg    config.Bus
	meters []config.Meter
	bus    *drivers.Bus
	cancel context.CancelFunc
	done   chan struct{}
	err    string
	// carried is what earlier runs of this bus counted before a reload
	// restarted it: counters in status and /metrics only ever grow.
	carried BusStatus

	mu         sync.Mutex
	restarting bool   // Run ended on its own (a panic): restarting after a backoff
	restarts   uint64 // times Run was started again
	runErr     string
}

func parityLetter(p string) string {
	switch strings.ToLower(p) {
	case "even", "e":
		return "E"
	case "odd", "o":
		return "O"
	}
	return "N"
}

// driverConfig turns the file's bus and meters into the drivers' terms.
func driverConfig(b config.Bus, meters []config.Meter, loc *time.Location) (drivers.BusConfig, []drivers.MeterConfig) {
	bc := drivers.BusConfig{
		Name: b.Name, Protocol: b.Protocol, Timeout: b.Timeout, Retries: b.Retries,
		Link: link.Config{Device: b.Device, TCP: b.TCP, Baud: b.Baud, DataBits: b.DataBits, Parity: parityLetter(b.Parity), StopBits: b.StopBits, RS485: b.RS485},
	}
	var mcs []drivers.MeterConfig
	for _, m := range meters {
		iv := m.Poll.Flow
		if m.Poll.Totals > 0 && (iv == 0 || m.Poll.Totals < iv) {
			iv = m.Poll.Totals
		}
		mc := drivers.MeterConfig{ID: m.ID, Address: m.Address, Secondary: m.Secondary, Profile: m.Profile, Interval: iv, Billing: m.Billing, Location: loc,
			Backfill: m.Backfill, ClockSync: m.ClockSync}
		if z, err := time.LoadLocation(m.Timezone); m.Timezone != "" && err == nil {
			mc.Location = z // the meter's clock keeps a zone of its own
		}
		if m.Speaks(b) == config.ProtoCJT188 {
			mc.CJT = cjtMeterConfig(m)
			if b.Protocol != config.ProtoCJT188 {
				mc.Protocol = drivers.ProtoCJT188 // a mixed line
			}
		}
		mcs = append(mcs, mc)
	}
	if b.Protocol == config.ProtoCJT188 || b.Protocol == config.ProtoMBus {
		bc.CJT = drivers.CJTBusConfig{Preamble: b.CJTPreamble(), DriftThreshold: b.ClockDrift, Location: loc}
	}
	return bc, mcs
}

// startBus starts polling one bus. Caller holds d.mu.
func (d *Daemon) startBus(cfg *config.Config, b config.Bus, meters []config.Meter) {
	r := &busRun{cfg: b, meters: meters, done: make(chan struct{}), cancel: func() {}}
	d.buses[b.Name] = r
	log := d.log.WithField("bus", b.Name)
	bc, mcs := driverConfig(b, meters, cfg.FilterConfig().Location) // meter clocks keep the gateway's zone
	bc.GatewayClock = busClock{d}
	pipe := d.path()
	if pipe == nil {
		r.err = ErrNoDataPath.Error()
		close(r.done)
		log.WithError(ErrNoDataPath).Error("bus not started")
		return
	}
	if d.marks != nil {
		for i := range mcs {
			if mcs[i].Backfill {
				mcs[i].BackfillFrom = d.marks.held(mcs[i].ID)
			}
		}
	}
	// The pipeline is the bus's sink: drivers → pipeline, nothing between.
	bus, err := drivers.NewBus(bc, mcs, cfg.Profiles, pipe.Own, logrus.NewEntry(d.log))
	if err != nil {
		r.err = err.Error()
		close(r.done)
		log.WithError(err).Error("bus not started")
		return
	}
	r.bus = bus
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { defer close(r.done); r.supervise(ctx, log) }()
}

// supervise runs the bus until ctx ends. Run heals line failures itself;
// whatever still ends it (a panic in a driver, an error) costs a restart
// after a backoff, never the bus.
func (r *busRun) supervise(ctx context.Context, log *logrus.Entry) {
	for fails := 1; ; fails = min(fails+1, 10) {
		err := runBus(ctx, r.bus)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("bus stopped on its own")
		}
		wait := time.Duration(rand.Int64N(int64(min(time.Duration(1)<<fails*100*time.Millisecond, 30*time.Second)) + 1))
		r.mu.Lock()
		r.restarting, r.restarts, r.runErr = true, r.restarts+1, err.Error()
		r.mu.Unlock()
		log.WithError(err).WithField("retry_in", wait.Round(time.Millisecond).String()).Error("bus stopped; restarting it")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		r.mu.Lock()
		r.restarting = false
		r.mu.Unlock()
	}
}

// errBusPanic wraps a panic recovered in a bus's goroutine: a bug.
var errBusPanic = errors.New("bus: panic")

func runBus(ctx context.Context, b *drivers.Bus) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errBusPanic, r, debug.Stack())
		}
	}()
	return b.Run(ctx)
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
	c := r.carried
	s := BusStatus{Name: r.cfg.Name, Protocol: r.cfg.Protocol, Port: port, State: "stopped", Error: r.err,
		Requests: c.Requests, Answers: c.Answers, Timeouts: c.Timeouts, CRCErrors: c.CRCErrors, Errors: c.Errors, Collisions: c.Collisions}
	if r.bus == nil {
		return s
	}
	st := r.bus.Stats()
	s.State = "reopening"
	if st.Open {
		s.State = "running"
	}
	if st.LineNoise != "" {
		s.State = "line_noise" // a babbling line: backing off and retrying until it goes quiet
	}
	r.mu.Lock()
	s.Restarts, s.RestartError = r.restarts, r.runErr
	if r.restarting {
		s.State = "restarting"
	}
	r.mu.Unlock()
	s.Requests += uint64(st.Requests)
	s.Answers += uint64(st.PollsOK)
	s.Timeouts += uint64(st.Timeouts)
	s.CRCErrors += uint64(st.CRCErrors)
	s.Errors += uint64(st.PollsFailed)
	s.Collisions += uint64(st.Collisions)
	s.Efficiency, s.Error = st.Efficiency, st.LastError
	return s
}

func (r *busRun) readNow(ctx context.Context, meter string) (reading.Reading, error) {
	if r.bus == nil {
		return reading.Reading{}, ErrNoDrivers
	}
	return r.bus.ReadNow(ctx, meter)
}

// cjtMeterConfig is a CJ/T 188 meter in the drivers' terms; the file was
// validated, so the status profile is known.
func cjtMeterConfig(m config.Meter) drivers.CJTMeterConfig {
	l, _ := config.StatusLayout(m.StatusProfile)
	return drivers.CJTMeterConfig{Address: m.AddressLabel, MeterType: m.MeterType, DIOrder: m.DIOrder, ClockOrder: m.ClockOrder,
		StatusLayout: l, SettlementDay: m.SettlementDay, Valve: m.Valve}
}

func (r *busRun) valve(ctx context.Context, meter, request string, open bool, by drivers.ValveOrder) (drivers.ValveResult, error) {
	if r.bus == nil {
		return drivers.ValveResult{}, ErrNoDrivers
	}
	return r.bus.ValveBy(ctx, meter, request, open, by)
}
