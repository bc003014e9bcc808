package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"tidegate/uplink/cmdauth"
)

// ConfigRequest is one remote configuration command as the uplink received
// it. Signed says it came as a verified signed command; the unsigned JSON
// form ({"id":..,"command":"config","base_hash":..,"config":..}) has it
// false, and the handler refuses it unless the config allows it.
type ConfigRequest struct {
	ID       string
	Command  string // config, meters_upsert, meters_remove or config_get
	BaseHash string // the config_hash the change was made from
	Config   string // config: the whole tidegate.yaml
	Meters   json.RawMessage
	Signed   bool
}

// ProblemLister is an error that lists a refused config's problems, each
// "path:line:col: message"; they go in the result's "problems".
type ProblemLister interface {
	error
	ProblemList() []string
}

func problemsOf(err error) []string {
	var pl ProblemLister
	if errors.As(err, &pl) {
		return pl.ProblemList()
	}
	return nil
}

func commandSizeLimit(name string) int {
	switch name {
	case "config", "meters_upsert", "meters_remove":
		return maxConfigCommandSize
	}
	return maxCommandSize
}

func (u *Uplink) configCommand(ctx context.Context, req commandRequest, env cmdauth.Envelope) (any, error) {
	ch, ok := u.cmds.(ConfigHandler)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not served by this gateway", ErrCommandUnknown, req.Command)
	}
	return ch.Configure(ctx, ConfigRequest{ID: req.ID, Command: req.Command, BaseHash: req.BaseHash, Config: req.Config, Meters: req.Meters, Signed: env.Signed})
}
