// Package daemon is `tidegate run`: it wires drivers → filter → buffer →
// uplink from a config, serves the local control API, reloads on SIGHUP
// (restarting only what changed) and shuts down cleanly on SIGTERM.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/cmd/tidegate/internal/datapath"
	"tidegate/reading"
)

// Options are what the run verb hands the daemon.
type Options struct {
	Config     *config.Config
	ConfigPath string
	Version    string
	Log        *logrus.Logger
	Getenv     func(string) string
	// ShutdownGrace bounds how long a clean stop may take before the daemon
	// gives up waiting for a bus or the uplink (systemd's stop timeout is longer).
	ShutdownGrace time.Duration
}

// Daemon is one running tidegate.
type Daemon struct {
	opts    Options
	log     *logrus.Logger
	started time.Time
	hub     *hub

	mu         sync.Mutex
	cfg        *config.Config
	buses      map[string]*busRun
	reloads    int
	lastReload string

	// pipeMu guards pipe: a reload of the buffer or gateway settings swaps
	// the whole data path (with every bus stopped: they hand their records
	// to the pipeline directly).
	pipeMu sync.RWMutex
	pipe   *datapath.Path
	// marks are the backfill marks (backfill.go), one set for the
	// daemon's life: a reopened data path keeps what was handed over.
	marks *memoryMarks

	valveMu   sync.Mutex
	lastValve map[string]time.Time // meter → when a valve write was last sent (rate limit)

	// Remote configuration (remote.go, rollback.go): one change at a
	// time, and one reload at a time whoever asked for it.
	remoteMu sync.Mutex
	reloadMu sync.Mutex
	rollback *rollbackGuard

	ready   atomic.Bool  // the data path is open: the status can be assembled
	stopped atomic.Bool  // shutting down: a late reload (remote.go) does nothing
	clock   gatewayClock // nil: the kernel's (clock.go)
	// apiLimits bound the control API's clients (api.go); zero: the defaults.
	apiLimits apiLimits
	healthAt  time.Time // the last health message published
}

func (d *Daemon) path() *datapath.Path {
	d.pipeMu.RLock()
	defer d.pipeMu.RUnlock()
	return d.pipe
}

// New prepares a daemon; nothing is opened until Run.
func New(o Options) *Daemon {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = 5 * time.Second
	}
	return &Daemon{opts: o, log: o.Log, cfg: o.Config, hub: newHub(), buses: map[string]*busRun{}}
}

// Run blocks until ctx ends (SIGTERM/SIGINT), reloading on every value from
// hup. It returns nil after a clean stop.
func (d *Daemon) Run(ctx context.Context, hup <-chan os.Signal) error {
	d.started = time.Now()
	cfg := d.config()
	log := d.log.WithFields(logrus.Fields{"gateway": cfg.Gateway.ID, "version": d.opts.Version, "config": d.opts.ConfigPath, "config_hash": cfg.Hash})
	log.WithFields(logrus.Fields{"buses": len(cfg.Buses), "meters": len(cfg.Meters)}).Info("starting")
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}

	d.hub.gateway = cfg.Gateway.ID
	pipe, err := datapath.Open(cfg, d.log, d.seen, d.opts.Version)
	if err != nil {
		return err
	}
	d.pipeMu.Lock()
	d.pipe = pipe
	d.pipeMu.Unlock()
	d.wire(pipe)
	d.ready.Store(true)
	if pipe.Up() != nil {
		if d.opts.ConfigPath != "" {
			g := &rollbackGuard{path: d.opts.ConfigPath, log: d.log, link: pathLink{d}, now: time.Now,
				apply: func() (*config.Config, error) { d.reload(); return d.config(), nil },
				event: func(e reading.Event) { d.ingest(reading.Record{Kind: reading.KindEvent, Event: &e}) }}
			g.load()
			d.mu.Lock()
			d.rollback = g
			d.mu.Unlock()
			go d.watchLink(ctx, g)
		}
		go d.publishHealth(ctx)
	}

	api, err := d.serveAPI(cfg)
	if err != nil {
		pipe.Close(context.Background())
		return err
	}

	d.mu.Lock()
	for _, b := range cfg.Buses {
		d.startBus(cfg, b, metersOn(cfg, b.Name))
	}
	d.mu.Unlock()
	log.WithField("stages", pipe.Stages()).Info("running")
	notify(d.log, sd.SdNotifyReady)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go d.watchdog(wctx)

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var shown string
	for {
		select {
		case <-ctx.Done():
			notify(d.log, sd.SdNotifyStopping)
			return d.shutdown(api)
		case <-hup:
			notify(d.log, sd.SdNotifyReloading)
			d.reload()
			notify(d.log, sd.SdNotifyReady)
		case <-tick.C:
			shown = d.showParts(shown)
		}
	}
}

// parts is Status.Parts: every bus, the pipeline owner, the uplink.
func (d *Daemon) parts() []PartStatus {
	d.mu.Lock()
	var out []PartStatus
	for _, r := range d.buses {
		b := r.status()
		ps := PartStatus{Name: "bus/" + b.Name, State: b.State, Restarts: b.Restarts, Error: b.RestartError}
		if b.State == "reopening" {
			ps.State, ps.Error = "restarting", b.Error // the bus reopens its line itself, with a backoff
		}
		out = append(out, ps)
	}
	d.mu.Unlock()
	pipe := d.path()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return append(out, pipe.PartStates()...)
}

// showParts logs a change of any part's state and says it in the retained
// status, so a utility sees a box that is healing itself without asking.
func (d *Daemon) showParts(shown string) string {
	var b strings.Builder
	for _, p := range d.parts() {
		fmt.Fprintf(&b, "%s=%s ", p.Name, p.State)
	}
	now := b.String()
	if now != shown {
		if shown != "" {
			d.log.WithField("parts", strings.TrimSpace(now)).Info("part states changed")
		}
		if up := d.path().Up(); up != nil {
			up.RefreshStatus()
		}
	}
	return now
}

// shutdown stops in data-flow order, so nothing polled is left unbuffered and
// nothing buffered is left unsent if the broker is reachable.
func (d *Daemon) shutdown(api *apiServer) error {
	t0 := time.Now()
	d.reloadMu.Lock() // no reload under way while the buses stop, none after
	d.stopped.Store(true)
	d.reloadMu.Unlock()
	d.log.Info("stopping: finishing current requests")
	deadline, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownGrace)
	defer cancel()
	d.mu.Lock()
	var wg sync.WaitGroup
	for _, b := range d.buses {
		wg.Add(1)
		go func(b *busRun) { defer wg.Done(); b.stop(deadline) }(b)
	}
	d.mu.Unlock()
	wg.Wait()
	// The pipeline drains what the buses delivered, flushes the filter and
	// the buffer, lets the uplink send what it can, then publishes offline.
	err := d.path().Close(deadline)
	api.close()
	fields := logrus.Fields{"took": time.Since(t0).Round(time.Millisecond).String()}
	if err != nil {
		d.log.WithFields(fields).WithError(err).Warn("stopped with an unclean stage")
		return nil // still exit 0: the buffer holds the rest for next start
	}
	d.log.WithFields(fields).Info("stopped")
	return nil
}

// reload applies a new config: an invalid one is refused and the old one
// keeps running; a valid one restarts only the buses whose settings or
// meters changed.
func (d *Daemon) reload() {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.stopped.Load() {
		return
	}
	path := d.opts.ConfigPath
	nc, err := config.Load(path, d.opts.Getenv)
	d.mu.Lock()
	d.reloads++
	if err != nil {
		var ps *config.Problems
		n := 1
		if errors.As(err, &ps) {
			n = len(ps.List)
		}
		d.lastReload = fmt.Sprintf("refused at %s: %d problem(s); still running config %s", time.Now().Format(time.RFC3339), n, d.cfg.Hash)
		d.mu.Unlock()
		d.log.WithFields(logrus.Fields{"config": path, "problems": n, "error": err.Error()}).Error("reload refused; keeping the running config")
		return
	}
	diff := config.Compare(d.cfg, nc)
	if diff.Empty() {
		d.cfg = nc // the same settings; its text (comments) and hash may differ
		d.lastReload = "no change at " + time.Now().Format(time.RFC3339)
		d.mu.Unlock()
		d.log.WithField("config", path).Info("reload: nothing changed")
		return
	}
	stopping := map[string]*busRun{}
	stop := append(append([]string{}, diff.BusesRemoved...), diff.BusesRestarted...)
	start := append(append([]string{}, diff.BusesAdded...), diff.BusesRestarted...)
	if reopensDataPath(diff) {
		// The buses hand their records to the pipeline itself: every one
		// stops before the old data path closes and starts on the new one,
		// so nothing polled goes into a closed pipeline.
		stop, start = stop[:0], start[:0]
		for name := range d.buses {
			stop = append(stop, name)
		}
		for _, b := range nc.Buses {
			start = append(start, b.Name)
		}
	}
	for _, name := range stop {
		if b := d.buses[name]; b != nil {
			stopping[name] = b
			delete(d.buses, name)
		}
	}
	d.mu.Unlock()
	// Outside d.mu: a bus finishing its request may take the grace period,
	// and status, reads and commands must not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownGrace)
	var wg sync.WaitGroup
	for _, b := range stopping {
		wg.Add(1)
		go func(b *busRun) { defer wg.Done(); b.stop(ctx) }(b)
	}
	wg.Wait()
	cancel()
	restartNeeded := []string{}
	var dataPathChanged, mqttChanged bool
	for _, g := range diff.Global {
		switch g {
		case "log":
			applyLogLevel(d.log, nc.Log.Level)
		case "filter":
			d.path().SetFilterConfig(nc)
		case "buffer", "gateway":
			dataPathChanged = true
		case "mqtt":
			mqttChanged = true
		default:
			restartNeeded = append(restartNeeded, g) // the API socket stays as started
		}
	}
	switch {
	case dataPathChanged:
		if err := d.reopenDataPath(nc); err != nil {
			d.log.WithError(err).Error("reload: the new buffer or gateway settings could not be applied; keeping the running data path")
			restartNeeded = append(restartNeeded, "buffer", "gateway")
		}
	case mqttChanged:
		if err := d.path().RestartUplink(nc, d.opts.Version); err != nil {
			d.log.WithError(err).Error("reload: the new mqtt settings could not be applied; the uplink keeps the old ones")
			restartNeeded = append(restartNeeded, "mqtt")
		} else if up := d.path().Up(); up != nil {
			up.SetCommandHandler(commands{d})
		}
	}
	if p := d.path(); p != nil {
		p.SetRunning(nc)
	}
	carried := map[string]BusStatus{} // counters survive a restart of their bus
	for name, b := range stopping {
		carried[name] = b.status()
	}
	d.mu.Lock()
	for _, name := range start {
		b, _ := nc.BusByName(name)
		d.startBus(nc, b, metersOn(nc, name))
		d.buses[name].carried = carried[name]
	}
	d.cfg = nc
	d.lastReload = fmt.Sprintf("applied at %s: config %s", time.Now().Format(time.RFC3339), nc.Hash)
	d.mu.Unlock()
	f := logrus.Fields{
		"config_hash": nc.Hash, "buses_added": diff.BusesAdded, "buses_removed": diff.BusesRemoved,
		"buses_restarted": diff.BusesRestarted, "meters_added": diff.MetersAdded, "meters_removed": diff.MetersRemoved,
		"meters_changed": diff.MetersChanged,
	}
	if len(restartNeeded) > 0 {
		f["needs_restart"] = restartNeeded
	}
	d.log.WithFields(f).Info("reloaded")
	if p := d.path(); p != nil && p.Up() != nil {
		p.Up().RefreshStatus() // the birth says the hash that runs now
	}
}

// reopensDataPath says whether a reload changes the buffer or the gateway:
// the data path is then opened anew (reopenDataPath).
func reopensDataPath(diff config.Diff) bool {
	for _, g := range diff.Global {
		if g == "buffer" || g == "gateway" {
			return true
		}
	}
	return false
}

// wire connects a new data path to the daemon.
func (d *Daemon) wire(p *datapath.Path) {
	if d.marks == nil {
		d.marks = newMemoryMarks(d.log)
	}
	d.marks.use(p.Buf)
	p.SetParts(d.parts)
	p.SetStatus(d.statusInfo)
	if p.Up() != nil {
		p.Up().SetCommandHandler(commands{d})
	}
}

// reopenDataPath applies new buffer or gateway settings in-process, with
// the buses stopped: the old data path stores what it holds and closes
// (its uplink says offline), the new one opens, and what the old file
// still held is carried into the new one if the file moved. Nothing polled
// is lost and the order is kept.
func (d *Daemon) reopenDataPath(nc *config.Config) error {
	d.pipeMu.Lock()
	defer d.pipeMu.Unlock()
	old := d.pipe
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownGrace)
	defer cancel()
	moved := old.Buf.Path() != nc.Buffer.Path
	if err := old.CloseKeep(ctx, moved); err != nil {
		return err
	}
	d.hub.gateway = nc.Gateway.ID
	np, err := datapath.Open(nc, d.log, d.seen, d.opts.Version)
	if err != nil {
		// The old file is still there: open it again as it was.
		d.log.WithError(err).Error("reload: new data path refused; reopening the old one")
		d.hub.gateway = old.Running().Gateway.ID
		op, oerr := datapath.Open(old.Running(), d.log, d.seen, d.opts.Version)
		if oerr != nil {
			return fmt.Errorf("%w; and reopening the old one: %w", err, oerr)
		}
		d.pipe = op
		d.wire(op)
		return err
	}
	if moved {
		if n, err := old.CarryInto(np.Buf); err != nil {
			d.log.WithError(err).WithField("carried", n).Error("reload: records of the old buffer file not all carried into the new one; they stay in the old file")
		} else if n > 0 {
			d.log.WithFields(logrus.Fields{"records": n, "from": old.Buf.Path(), "to": nc.Buffer.Path}).Info("reload: the old buffer file's records carried into the new one")
		}
		old.Buf.Close()
	}
	d.pipe = np
	d.wire(np)
	return nil
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func metersOn(c *config.Config, bus string) []config.Meter {
	var out []config.Meter
	for _, m := range c.Meters {
		if m.Bus == bus && !m.Disabled {
			out = append(out, m)
		}
	}
	return out
}

// status assembles GET /v1/status.
func (d *Daemon) status() Status {
	d.mu.Lock()
	cfg := d.cfg
	s := Status{Gateway: cfg.Gateway.ID, Version: d.opts.Version, ConfigHash: cfg.Hash, Started: d.started,
		UptimeS: time.Since(d.started).Seconds(), Reloads: d.reloads, LastReload: d.lastReload, Warnings: cfg.Warnings(),
		Commands: CommandsStatus{Enabled: cfg.MQTT.Commands, UnsignedValve: cfg.MQTT.UnsignedValve == config.UnsignedAllow}}
	for _, b := range cfg.Buses {
		if r := d.buses[b.Name]; r != nil {
			s.Buses = append(s.Buses, r.status())
		}
	}
	d.mu.Unlock()
	sort.Slice(s.Buses, func(i, j int) bool { return s.Buses[i].Name < s.Buses[j].Name })
	for _, m := range cfg.Meters {
		ms := MeterStatus{ID: m.ID, Number: m.Number, Bus: m.Bus, State: d.hub.stateOf(m.ID)}
		if m.Disabled {
			ms.State = "disabled"
		}
		if j, ok := d.hub.lastOf(m.ID); ok {
			ms.Last = &j
		}
		s.Meters = append(s.Meters, ms)
	}
	s.Parts = d.parts()
	pipe := d.path()
	if pipe.Up() != nil {
		s.Commands.KeyIDs = pipe.Up().CommandKeyIDs() // what the running uplink accepts, not what a reload wrote
	}
	s.Buffer = pipe.BufferStatus()
	s.Broker = pipe.BrokerStatus()
	s.Stages = pipe.Stages()
	return s
}

// readNow polls one meter at once on its bus, between scheduled requests.
// The answer is in the record's one encoding, as the downlink's read command
// answers: not stored, so without seq and id.
func (d *Daemon) readNow(ctx context.Context, meter string) (reading.RecordJSON, error) {
	cfg := d.config()
	m, ok := cfg.MeterByID(meter)
	if !ok {
		return reading.RecordJSON{}, fmt.Errorf("%w: %q", ErrUnknownMeter, meter)
	}
	d.mu.Lock()
	b := d.buses[m.Bus]
	d.mu.Unlock()
	if b == nil {
		return reading.RecordJSON{}, fmt.Errorf("bus %q of meter %q is not running", m.Bus, m.ID)
	}
	r, err := b.readNow(ctx, m.ID)
	if err != nil {
		return reading.RecordJSON{}, err
	}
	return liveRecord(&r), nil
}

// liveRecord encodes a reading read on demand: a reading record that was
// never stored, so it has no seq and no id.
func liveRecord(r *reading.Reading) reading.RecordJSON {
	return reading.ToJSON("", reading.Record{Kind: reading.KindReading, Reading: r})
}

// ErrUnknownMeter is returned for a meter id that is not in the running config.
var ErrUnknownMeter = errors.New("no such meter in the running config")

// ingest hands a record the daemon itself makes (a valve or config event)
// to the pipeline, as a bus hands over what it polled.
func (d *Daemon) ingest(rec reading.Record) {
	if p := d.path(); p != nil {
		p.Own.Ingest(rec)
	}
}

// seen is the pipeline's Seen: the hub's tail and last readings, and the
// backfill marks (a daily value from a meter's memory moves its mark in
// memory when it arrives and in the buffer once it is stored).
func (d *Daemon) seen(rec reading.Record) {
	d.hub.publish(rec)
	if rec.Reading == nil || d.marks == nil {
		return
	}
	if rec.Seq == 0 {
		d.marks.sent(*rec.Reading)
	} else {
		d.marks.stored(rec)
	}
}

// pathLink is the rollback guard's view of the uplink (rollback.go).
type pathLink struct{ d *Daemon }

// Reached says whether the box is connected to a broker with cfg's link
// settings: the uplink runs with them and is connected.
func (l pathLink) Reached(cfg *config.Config) bool {
	p := l.d.path()
	if p == nil || p.Up() == nil || !p.Up().Connected() {
		return false
	}
	o := p.Opened()
	return o != nil && sameLink(o, cfg)
}
