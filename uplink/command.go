package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"tidegate/reading"
)

// CommandHandler is what the daemon implements to serve downlink commands.
// Calls may come concurrently (at most maxCommands at a time) and get a
// context that ends after commandTimeout.
type CommandHandler interface {
	// ReadMeter polls one meter now and returns what it answered.
	ReadMeter(ctx context.Context, meter string) (reading.Reading, error)
	// SetInterval changes one meter's poll interval.
	SetInterval(ctx context.Context, meter string, every time.Duration) error
}

// ValveHandler is a CommandHandler that also serves "valve"
// ({"id":..,"command":"valve","meter":..,"action":"open"|"close"}): the
// daemon checks that the meter has valve control enabled. Who may send it
// is decided by the broker's ACL on the command topic and the gateway's
// client certificate.
type ValveHandler interface {
	Valve(ctx context.Context, request, meter, action string) (any, error)
}

// ConfigHandler is a CommandHandler that also serves the remote
// configuration commands "config", "meters_upsert", "meters_remove" and
// "config_get" (configcmd.go). The uplink only parses and answers; the
// daemon decides (signatures, base_hash, validation, rollback).
type ConfigHandler interface {
	Configure(ctx context.Context, req ConfigRequest) (any, error)
}

// Command errors, sent back in the result's "error".
var (
	ErrCommandMalformed = errors.New("malformed command")
	ErrCommandUnknown   = errors.New("unknown command")
	ErrCommandBusy      = errors.New("too many commands in progress")
)

const (
	maxCommands    = 4
	commandTimeout = 30 * time.Second
	maxCommandSize = 4096
	// A config command carries a whole tidegate.yaml.
	maxConfigCommandSize = 64 << 10
)

var commandID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

type commandRequest struct {
	ID       string `json:"id"`
	Command  string `json:"command"`
	Meter    string `json:"meter"`
	Interval string `json:"interval"`
	Action   string `json:"action"` // valve: open or close
	// config, meters_upsert, meters_remove (configcmd.go)
	BaseHash string          `json:"base_hash"`
	Config   string          `json:"config"`
	Meters   json.RawMessage `json:"meters"`
}

type commandResult struct {
	ID     string `json:"id"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Result any    `json:"result,omitempty"`
	// Problems: a refused config's problems, each path:line:col: message.
	Problems []string `json:"problems,omitempty"`
}

// SetCommandHandler gives the uplink the daemon's command handler; call it
// before Run. Without one, only ping is served when commands are enabled.
func (u *Uplink) SetCommandHandler(h CommandHandler) { u.cmds = h }

// onCommand serves one request from .../cmd/<name>. Whatever arrives gets a
// response on .../cmd/<id>/result (or .../cmd/_/result when the request
// has no usable id); nothing here may panic or block the client.
func (u *Uplink) onCommand(c paho.Client, topic string, payload []byte) {
	name := topic[strings.LastIndexByte(topic, '/')+1:]
	req, err := parseCommand(name, payload)
	id := req.ID
	if !commandID.MatchString(id) {
		id = "_"
	}
	log := u.log.WithFields(map[string]any{"command": req.Command, "request": id})
	res := commandResult{ID: req.ID}
	if err == nil {
		select {
		case u.cmdSem <- struct{}{}:
			res.Result, err = u.runCommand(req)
			<-u.cmdSem
		default:
			err = ErrCommandBusy
		}
	}
	if err != nil {
		res.Error = err.Error()
		res.Problems = problemsOf(err)
		log.WithError(err).Warn("uplink: command failed")
	} else {
		res.OK = true
		log.Info("uplink: command done")
	}
	p, _ := json.Marshal(res)
	c.Publish(u.t.cmdResult(id), 1, false, p)
}

func parseCommand(name string, payload []byte) (commandRequest, error) {
	var req commandRequest
	if limit := commandSizeLimit(name); len(payload) > limit {
		return req, fmt.Errorf("%w: %d bytes (max %d)", ErrCommandMalformed, len(payload), limit)
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return req, fmt.Errorf("%w: %v", ErrCommandMalformed, err)
	}
	if !commandID.MatchString(req.ID) {
		return req, fmt.Errorf("%w: id %q must be 1-64 of [A-Za-z0-9_.-]", ErrCommandMalformed, req.ID)
	}
	if req.Command == "" {
		req.Command = name
	}
	if req.Command != name {
		return req, fmt.Errorf("%w: command %q sent on topic cmd/%s", ErrCommandMalformed, req.Command, name)
	}
	return req, nil
}

func (u *Uplink) runCommand(req commandRequest) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	switch req.Command {
	case "ping":
		return map[string]any{"gateway": u.cfg.Gateway, "time": time.Now().UTC(), "version": Version}, nil
	case "read", "set_interval", "valve":
	case "config", "meters_upsert", "meters_remove", "config_get":
		return u.configCommand(ctx, req)
	default:
		return nil, fmt.Errorf("%w: %q (want ping, read, set_interval, valve, config, meters_upsert, meters_remove or config_get)", ErrCommandUnknown, req.Command)
	}
	if req.Meter == "" {
		return nil, fmt.Errorf("%w: %s needs a meter", ErrCommandMalformed, req.Command)
	}
	if u.cmds == nil {
		return nil, fmt.Errorf("%w: %s is not served by this gateway", ErrCommandUnknown, req.Command)
	}
	if req.Command == "valve" {
		vh, ok := u.cmds.(ValveHandler)
		if !ok {
			return nil, fmt.Errorf("%w: valve is not served by this gateway", ErrCommandUnknown)
		}
		if req.Action != "open" && req.Action != "close" {
			return nil, fmt.Errorf("%w: valve action %q, want open or close", ErrCommandMalformed, req.Action)
		}
		return vh.Valve(ctx, req.ID, req.Meter, req.Action)
	}
	if req.Command == "set_interval" {
		d, err := time.ParseDuration(req.Interval)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: interval %q is not a positive duration like 30s", ErrCommandMalformed, req.Interval)
		}
		if err := u.cmds.SetInterval(ctx, req.Meter, d); err != nil {
			return nil, err
		}
		return map[string]any{"meter": req.Meter, "interval": d.String()}, nil
	}
	r, err := u.cmds.ReadMeter(ctx, req.Meter)
	if err != nil {
		return nil, err
	}
	p, err := encodeRecord(u.cfg.Gateway, reading.Record{Kind: reading.KindReading, Reading: &r}, time.Now(), u.cfg.HistoricalAfter)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, err
	}
	delete(m, "id") // not a buffered record: no id, no seq
	delete(m, "seq")
	return m, nil
}
