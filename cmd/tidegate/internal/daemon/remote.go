package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
	"tidegate/uplink"
)

// Remote configuration refusals, sent back in the result's "error".
var (
	// ErrUnsignedConfig: the unsigned JSON form of a config command, where
	// the config does not say mqtt.unsigned_config: allow.
	ErrUnsignedConfig = errors.New("unsigned config commands are refused (mqtt.unsigned_config is not allow); send it signed")
	// ErrStaleBase: the change was made from another config than the
	// running one (another operator's change came first).
	ErrStaleBase = errors.New("base_hash is not the running config's")
	// ErrConfigProblems: the config would not pass config validate.
	ErrConfigProblems = errors.New("the config has problems; nothing changed")
	// ErrBadConfigCommand: a config command without what it needs.
	ErrBadConfigCommand = errors.New("malformed config command")
)

// ConfigResult is a config, meters_upsert or meters_remove command's result.
type ConfigResult struct {
	ConfigHash string        `json:"config_hash"`
	Restarted  ConfigTouched `json:"restarted"`
	Removed    ConfigTouched `json:"removed"`
	// NeedsRestart: settings written and validated that this daemon applies
	// only when it starts again (e.g. buffer.path, api.socket).
	NeedsRestart []string `json:"needs_restart,omitempty"`
	// RollbackAfter is set when the change touched the broker link: it is
	// rolled back unless the box reaches a broker within this time.
	RollbackAfter string `json:"rollback_after,omitempty"`
}

// ConfigTouched lists buses and meters.
type ConfigTouched struct {
	Buses  []string `json:"buses"`
	Meters []string `json:"meters"`
}

// ConfigGetResult is config_get's result: the running config, secrets
// replaced by ***, and its hash (the base_hash of a change made from it).
type ConfigGetResult struct {
	ConfigHash string `json:"config_hash"`
	Config     string `json:"config"`
}

// problemList carries a refused config's problems to the uplink's result.
type problemList struct {
	err  error
	list []string
}

func (p problemList) Error() string         { return p.err.Error() }
func (p problemList) Unwrap() error         { return p.err }
func (p problemList) ProblemList() []string { return p.list }

// Configure serves the remote configuration commands (uplink.ConfigHandler).
// The signed form is verified before it gets here and comes with Signed
// set; everything after that is the same for both forms.
func (c commands) Configure(_ context.Context, req uplink.ConfigRequest) (any, error) {
	return c.d.configure(req)
}

func (d *Daemon) configure(req uplink.ConfigRequest) (any, error) {
	if req.Command == "config_get" {
		cfg := d.config()
		return ConfigGetResult{ConfigHash: cfg.Hash, Config: string(config.RedactText(cfg.Source))}, nil
	}
	if !req.Signed && d.config().MQTT.UnsignedConfig != "allow" {
		return nil, ErrUnsignedConfig
	}
	d.mu.Lock()
	guard := d.rollback
	d.mu.Unlock()
	if guard == nil {
		return nil, fmt.Errorf("%w: remote configuration needs the daemon's config file and uplink", ErrBadConfigCommand)
	}
	d.remoteMu.Lock() // one change at a time: each is made from the one before
	unlock := true
	defer func() {
		if unlock {
			d.remoteMu.Unlock()
		}
	}()
	cur := d.config()
	if req.BaseHash == "" && req.Command == "config" {
		return nil, fmt.Errorf("%w: base_hash is required (the config_hash the new config was edited from; config_get gives it)", ErrBadConfigCommand)
	}
	if req.BaseHash != "" && req.BaseHash != cur.Hash {
		return nil, fmt.Errorf("%w: the running config is %s, the change was made from %s; get the config again (config_get) and redo the change", ErrStaleBase, cur.Hash, req.BaseHash)
	}
	text, err := editedText(req, cur.Source)
	if err != nil {
		return nil, err
	}
	nc, err := config.Parse(d.opts.ConfigPath, text, d.opts.Getenv)
	if err != nil {
		var ps *config.Problems
		if errors.As(err, &ps) {
			list := make([]string, len(ps.List))
			_ = ps.Error() // sorts by position
			for i, p := range ps.List {
				list[i] = config.RedactURL(p.String())
			}
			return nil, problemList{err: fmt.Errorf("%w (%d problem(s))", ErrConfigProblems, len(list)), list: list}
		}
		return nil, err
	}
	diff := config.Compare(cur, nc)
	res := ConfigResult{ConfigHash: nc.Hash}
	res.Restarted.Buses = append(append([]string{}, diff.BusesAdded...), diff.BusesRestarted...)
	res.Restarted.Meters = append(append([]string{}, diff.MetersAdded...), diff.MetersChanged...)
	res.Removed.Buses = append([]string{}, diff.BusesRemoved...)
	res.Removed.Meters = append([]string{}, diff.MetersRemoved...)
	if nc.Hash == cur.Hash {
		return res, nil
	}
	probation, err := guard.applying(cur, nc)
	if err != nil {
		return nil, err
	}
	if probation {
		res.RollbackAfter = nc.MQTT.ConfigRollbackAfter.String()
	}
	if err := config.WriteFile(d.opts.ConfigPath, text); err != nil {
		return nil, fmt.Errorf("writing %s: %w", d.opts.ConfigPath, err)
	}
	for _, g := range diff.Global {
		if g != "log" && g != "filter" {
			res.NeedsRestart = append(res.NeedsRestart, g)
		}
	}
	if !sameLink(cur, nc) {
		// A reload that moves the uplink to the new broker would take this
		// result's connection with it: the result leaves first, then the
		// reload applies the config, and the next change waits for it.
		unlock = false
		go func() {
			defer d.remoteMu.Unlock()
			time.Sleep(linkReloadDelay)
			d.reload()
		}()
	} else {
		d.reload()
		if now := d.config(); now.Hash != nc.Hash {
			return nil, fmt.Errorf("%s was written but the reload did not apply it (running %s): %s", d.opts.ConfigPath, now.Hash, d.lastReloadText())
		}
	}
	d.log.WithFields(logrus.Fields{"request": req.ID, "command": req.Command, "signed": req.Signed, "from": cur.Hash, "config_hash": nc.Hash}).Warn("remote config applied")
	d.ingest(reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: time.Now(), Type: "config_changed",
		Message: fmt.Sprintf("%s by request %s: config %s → %s", req.Command, req.ID, cur.Hash, nc.Hash),
		Attrs:   map[string]string{"request": req.ID, "command": req.Command, "from": cur.Hash, "to": nc.Hash}}})
	return res, nil
}

// linkReloadDelay is how long a config that changes the broker link waits
// after its result was handed to the uplink before it is applied.
const linkReloadDelay = time.Second

// editedText is the whole new file a command asks for.
func editedText(req uplink.ConfigRequest, running []byte) ([]byte, error) {
	switch req.Command {
	case "config":
		if req.Config == "" {
			return nil, fmt.Errorf("%w: config (the whole tidegate.yaml) is empty", ErrBadConfigCommand)
		}
		// Secrets left as *** (the text came from config_get) are the running ones.
		return config.Unredact([]byte(req.Config), running), nil
	case "meters_upsert":
		var ms []json.RawMessage
		if err := json.Unmarshal(req.Meters, &ms); err != nil || len(ms) == 0 {
			return nil, fmt.Errorf("%w: meters must be a list of meters as the config writes them, e.g. [{\"id\":\"flat-4\",\"bus\":\"bus1\",\"address\":4}]", ErrBadConfigCommand)
		}
		return config.UpsertMeters(running, ms)
	case "meters_remove":
		var ids []string
		if err := json.Unmarshal(req.Meters, &ids); err != nil || len(ids) == 0 {
			return nil, fmt.Errorf("%w: meters must be a list of meter ids, e.g. [\"flat-4\"]", ErrBadConfigCommand)
		}
		return config.RemoveMeters(running, ids)
	}
	return nil, fmt.Errorf("%w: %q", ErrBadConfigCommand, req.Command)
}

func (d *Daemon) lastReloadText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastReload
}

// watchLink runs the rollback guard once a second until ctx ends.
func (d *Daemon) watchLink(ctx context.Context, g *rollbackGuard) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		g.check(d.config())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
