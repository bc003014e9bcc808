package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
)

// brokerLink says whether the box reaches a broker with the link settings
// of a config (its mqtt section and gateway id). The daemon's is the
// uplink's connection, counted only while the uplink runs with those
// settings: a config whose new broker is not applied yet has not proved
// itself by the old broker's connection.
type brokerLink interface {
	Reached(cfg *config.Config) bool
}

// linkOf is what of a config decides whether the box reaches its broker:
// where it connects and as whom. A change of anything else (batching, ack
// mode, health_every) cannot cut the box off and is not on probation.
func linkOf(c *config.Config) any {
	m := c.MQTT
	return struct {
		ID, Broker, ClientID, TopicPrefix, Username, Password, PasswordFile string
		TLS                                                                 config.TLS
		Insecure                                                            bool
	}{c.Gateway.ID, m.Broker, m.ClientID, m.TopicPrefix, m.Username, m.Password, m.PasswordFile, m.TLS, m.Insecure}
}

func sameLink(a, b *config.Config) bool { return reflect.DeepEqual(linkOf(a), linkOf(b)) }

// rollbackState is kept beside the config (<config>.remote.json) so a
// restart in the middle of a probation still rolls back, and a rollback
// done just before a restart is still announced.
type rollbackState struct {
	// Pending is the hash of a remote config on probation: it changed the
	// link, and the box has not reached a broker with it yet.
	Pending string    `json:"pending,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// LastGood is the hash of <config>.last-good, the last config the box
	// reached a broker with.
	LastGood   string      `json:"last_good,omitempty"`
	RolledBack *rolledBack `json:"rolled_back,omitempty"` // announced once connected again
}

type rolledBack struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// What the guard decides on one look at the link.
type guardAction int

const (
	guardNothing guardAction = iota
	guardMarkGood
	guardRollBack
)

// decide is the rollback's whole timing logic, pure over the clock and the
// link: a config that reached a broker is good (and a rollback pending
// announcement is announced); one on probation that has not reached one
// for `after` since it was applied (or since the daemon started) is rolled
// back to the last good one.
func (s *rollbackState) decide(now time.Time, running string, reached bool, after time.Duration) guardAction {
	if reached {
		// A pending config not applied yet (the old one still runs and
		// reaches its broker) stays pending.
		if s.LastGood != running || s.Pending == running || s.RolledBack != nil {
			return guardMarkGood
		}
		return guardNothing
	}
	if s.Pending != "" && s.Pending == running && s.LastGood != "" && s.LastGood != running && now.Sub(s.Since) >= after {
		return guardRollBack
	}
	return guardNothing
}

// rollbackGuard runs decide against the daemon and keeps its state on disk.
type rollbackGuard struct {
	path  string // the config file
	log   *logrus.Logger
	link  brokerLink
	now   func() time.Time
	apply func() (*config.Config, error) // reload the config file; returns the running config
	event func(reading.Event)

	mu      sync.Mutex
	state   rollbackState
	lastErr string // the last write error logged: logged once, not every second
}

func (g *rollbackGuard) lastGoodPath() string { return g.path + ".last-good" }
func (g *rollbackGuard) statePath() string    { return g.path + ".remote.json" }

// load reads the state at start. A probation's window starts again now: the
// box had no chance to connect while it was down.
func (g *rollbackGuard) load() {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, err := os.ReadFile(g.statePath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			g.log.WithError(err).Warn("remote config: state unreadable; starting afresh")
		}
		return
	}
	if err := json.Unmarshal(b, &g.state); err != nil {
		g.log.WithError(err).Warn("remote config: state unreadable; starting afresh")
		g.state = rollbackState{}
		return
	}
	if g.state.Pending != "" {
		g.state.Since = g.now()
	}
}

func (g *rollbackGuard) saveLocked() error {
	b, _ := json.MarshalIndent(g.state, "", "  ")
	return config.WriteFile(g.statePath(), append(b, '\n'))
}

// applying is called before a remote config replaces the running one. The
// running one is the last good (the command came over the broker); the new
// one is on probation when it changes the link.
func (g *rollbackGuard) applying(old, nc *config.Config) (probation bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state.LastGood != old.Hash && g.link.Reached(old) {
		if err := config.WriteFile(g.lastGoodPath(), old.Source); err != nil {
			return false, fmt.Errorf("keeping the running config as the last good: %w", err)
		}
		g.state.LastGood = old.Hash
	}
	g.state.Pending, g.state.Since = "", time.Time{}
	if !sameLink(old, nc) && g.state.LastGood != "" {
		g.state.Pending, g.state.Since = nc.Hash, g.now()
	}
	return g.state.Pending != "", g.saveLocked()
}

// check looks at the link once and acts on what decide says.
func (g *rollbackGuard) check(running *config.Config) {
	reached := g.link.Reached(running)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !running.MQTT.Commands && g.state.Pending == "" && g.state.RolledBack == nil {
		return // no remote config can come: nothing to keep beside the file
	}
	switch g.state.decide(g.now(), running.Hash, reached, running.MQTT.ConfigRollbackAfter) {
	case guardMarkGood:
		if g.state.LastGood != running.Hash {
			if err := config.WriteFile(g.lastGoodPath(), running.Source); err != nil {
				if err.Error() != g.lastErr {
					g.lastErr = err.Error()
					g.log.WithError(err).Error("remote config: cannot keep the running config as the last good (is the config's directory writable?)")
				}
				return
			}
			g.lastErr = ""
			g.state.LastGood = running.Hash
		}
		if g.state.Pending == running.Hash {
			g.state.Pending, g.state.Since = "", time.Time{}
		}
		if rb := g.state.RolledBack; rb != nil {
			g.event(reading.Event{Time: g.now(), Type: "config_rolled_back",
				Message: fmt.Sprintf("config %s was rolled back to %s: %s", rb.From, rb.To, rb.Reason),
				Attrs:   map[string]string{"from": rb.From, "to": rb.To, "at": rb.At.UTC().Format(time.RFC3339), "reason": rb.Reason}})
			g.state.RolledBack = nil
		}
		if err := g.saveLocked(); err != nil {
			g.log.WithError(err).Error("remote config: cannot save its state")
		}
	case guardRollBack:
		g.rollBackLocked(running)
	}
}

func (g *rollbackGuard) rollBackLocked(running *config.Config) {
	after := running.MQTT.ConfigRollbackAfter
	log := g.log.WithFields(logrus.Fields{"config_hash": running.Hash, "last_good": g.state.LastGood, "after": after.String()})
	good, err := os.ReadFile(g.lastGoodPath())
	if err == nil && config.HashOf(good) != g.state.LastGood {
		err = fmt.Errorf("%s holds config %s, not %s", g.lastGoodPath(), config.HashOf(good), g.state.LastGood)
	}
	if err != nil {
		log.WithError(err).Error("remote config: no broker reached, and the last good config is gone; keeping this one")
		g.state.Pending = ""
		_ = g.saveLocked()
		return
	}
	// State first: a crash between the two writes leaves a rollback to
	// announce and the probation over, never a second rollback.
	g.state.RolledBack = &rolledBack{From: running.Hash, To: g.state.LastGood, At: g.now(),
		Reason: fmt.Sprintf("no broker reached within %s (mqtt.config_rollback_after)", after)}
	g.state.Pending, g.state.Since = "", time.Time{}
	if err := g.saveLocked(); err != nil {
		log.WithError(err).Error("remote config: cannot save its state; not rolling back")
		return
	}
	if err := config.WriteFile(g.path, good); err != nil {
		log.WithError(err).Error("remote config: cannot write the last good config back")
		return
	}
	log.Error("remote config: no broker reached with the new config; rolled back to the last good one")
	g.mu.Unlock()
	_, err = g.apply()
	g.mu.Lock()
	if err != nil {
		log.WithError(err).Error("remote config: the last good config was written back but not applied")
	}
}
