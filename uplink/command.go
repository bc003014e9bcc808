package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"tidegate/buffer"
	"tidegate/reading"
	"tidegate/uplink/cmdauth"
)

// CommandHandler is what the daemon implements to serve downlink commands.
// Commands of one name are served one at a time, in the order they arrived;
// commands of different names may run at once (each meter's bus serialises
// what reaches the line). Every call gets a context that ends after
// commandTimeout, or at a signed command's exp if that is sooner.
type CommandHandler interface {
	// ReadMeter polls one meter now and returns what it answered.
	ReadMeter(ctx context.Context, meter string) (reading.Reading, error)
	// SetInterval changes one meter's poll interval.
	SetInterval(ctx context.Context, meter string, every time.Duration) error
}

// ValveRequest is one valve command as the uplink accepted it.
type ValveRequest struct {
	ID       string // the request id (a token's jti)
	Meter    string
	Action   string // open or close
	Operator string // who at the utility asked, if the service says
	// Sender says how it came: "mqtt signed kid=<kid>" or "mqtt unsigned".
	Sender string
	// NotAfter, if not zero, is when the command stops being valid (its
	// token's exp): nothing may be sent to the meter after it. The context
	// the handler gets ends then too.
	NotAfter time.Time
}

// ValveHandler is a CommandHandler that also serves "valve". The uplink
// has checked the command's signature (or the unsigned policy), its
// freshness and that its id was never used; the daemon checks that the
// meter has valve control enabled and the rate limit.
type ValveHandler interface {
	Valve(ctx context.Context, r ValveRequest) (any, error)
}

// BackfillHandler is a CommandHandler that also serves "backfill"
// ({"id":..,"command":"backfill","meter":..,"from":RFC 3339,"to":RFC 3339}):
// the meter's stored values in that range, read from its memory and also
// sent as records with source meter_memory.
type BackfillHandler interface {
	Backfill(ctx context.Context, meter string, from, to time.Time) (any, error)
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
	ErrCommandMalformed = cmdauth.ErrMalformed
	ErrCommandUnknown   = errors.New("unknown command")
	ErrCommandBusy      = errors.New("too many commands of this kind waiting")
	// ErrCommandRetained: a retained command would run again on every
	// reconnect (and for every new subscriber); it is never executed.
	ErrCommandRetained = errors.New("retained command messages are never executed; publish commands with retain=false")
	// ErrCommandReplayed: the request id was used before (within its window).
	ErrCommandReplayed = errors.New("request id already used (replay refused)")
	// ErrCommandExpired: a signed command whose exp passed while it waited
	// its turn; nothing was sent.
	ErrCommandExpired = errors.New("command expired before it could be sent; nothing was sent")
)

const (
	// commandQueue bounds the commands of one name waiting their turn; a
	// flood of one kind fills its own queue and never another's.
	commandQueue   = 32
	commandTimeout = 30 * time.Second
	maxCommandSize = 4096
	// A config command carries a whole tidegate.yaml.
	maxConfigCommandSize = 64 << 10
)

var commandID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// commandRequest is what both forms of a command decode into: the
// unsigned JSON's keys, and a signed token's private claims (cmdauth).
type commandRequest struct {
	ID       string `json:"id"`
	Command  string `json:"command"`
	Meter    string `json:"meter"`
	Interval string `json:"interval"`
	Action   string `json:"action"` // valve: open or close
	From     string `json:"from"`   // backfill: RFC 3339
	To       string `json:"to"`
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

// ReplayWindow remembers used request ids until a time, refusing one in
// its window with buffer.ErrReplayed. *buffer.Buffer satisfies it, keeping
// them in the buffer file so they survive a restart; New takes it from the
// Queue when the queue is one, else ids are kept in memory only.
type ReplayWindow interface {
	Remember(id string, until, now time.Time) error
}

// memReplay is the replay window of a queue that keeps none.
type memReplay struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

func (m *memReplay) Remember(id string, until, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.ids[id]; ok && t.After(now) {
		return fmt.Errorf("%w: %q", buffer.ErrReplayed, id)
	}
	for k, t := range m.ids {
		if !t.After(now) {
			delete(m.ids, k)
		}
	}
	if m.ids == nil {
		m.ids = map[string]time.Time{}
	}
	m.ids[id] = until
	return nil
}

// CommandKeyIDs are the kids of the keys this uplink accepts signed
// commands from (read at New).
func (u *Uplink) CommandKeyIDs() []string {
	out := make([]string, 0, len(u.verifier.Keys))
	for k := range u.verifier.Keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SetCommandHandler gives the uplink the daemon's command handler; call it
// before Run. Without one, only ping is served when commands are enabled.
func (u *Uplink) SetCommandHandler(h CommandHandler) { u.cmds = h }

// commandPolicies says, per command, whether the unsigned form is accepted;
// a command listed here also has its ids kept in the replay window. Every
// command not listed accepts the unsigned form (ping, read, set_interval).
func (c Config) commandPolicies() map[string]cmdauth.Policy {
	return map[string]cmdauth.Policy{"valve": {Unsigned: c.UnsignedValve},
		"config": {Unsigned: c.UnsignedConfig, NoMeter: true}, "meters_upsert": {Unsigned: c.UnsignedConfig, NoMeter: true},
		"meters_remove": {Unsigned: c.UnsignedConfig, NoMeter: true}, "config_get": {Unsigned: true, NoMeter: true}}
}

// cmdJob is one accepted command waiting its turn.
type cmdJob struct {
	req commandRequest
	env cmdauth.Envelope
}

// commandQueues: one bounded queue and one worker per command name, so
// commands of a name run in arrival order, one at a time.
type commandQueues struct {
	mu sync.Mutex
	qs map[string]chan cmdJob
}

// onCommandMessage is paho's handler for .../cmd/+. The client dispatches
// in arrival order (SetOrderMatters(true)), so this must never block: it
// checks the message and queues it; results are published from goroutines.
func (u *Uplink) onCommandMessage(c paho.Client, m paho.Message) {
	topic := m.Topic()
	name := topic[strings.LastIndexByte(topic, '/')+1:]
	req, env, err := u.parseCommand(name, m.Payload())
	if err == nil && m.Retained() {
		err = ErrCommandRetained
	}
	if err == nil {
		err = u.enqueue(name, cmdJob{req: req, env: env})
	}
	if err != nil {
		go u.answer(c, req, env, commandResult{ID: req.ID}, err)
	}
}

func (u *Uplink) enqueue(name string, j cmdJob) error {
	u.cq.mu.Lock()
	defer u.cq.mu.Unlock()
	q, ok := u.cq.qs[name]
	if !ok {
		if u.cq.qs == nil {
			u.cq.qs = map[string]chan cmdJob{}
		}
		q = make(chan cmdJob, commandQueue)
		u.cq.qs[name] = q
		go u.commandWorker(q)
	}
	select {
	case q <- j:
		return nil
	default:
		return fmt.Errorf("%w (%d %s commands queued)", ErrCommandBusy, commandQueue, name)
	}
}

// commandWorker serves one command name's queue for the uplink's life (it
// ends when Run returns).
func (u *Uplink) commandWorker(q chan cmdJob) {
	for {
		select {
		case <-u.done:
			return
		case j := <-q:
			res, err := u.execute(j)
			u.answer(u.currentClient(), j.req, j.env, commandResult{ID: j.req.ID, Result: res}, err)
		}
	}
}

func (u *Uplink) answer(c paho.Client, req commandRequest, env cmdauth.Envelope, res commandResult, err error) {
	id := req.ID
	if !commandID.MatchString(id) {
		id = "_"
	}
	log := u.log.WithFields(map[string]any{"command": req.Command, "request": id, "meter": req.Meter, "signed": env.Signed})
	if env.Operator != "" {
		log = log.WithField("operator", env.Operator)
	}
	if err != nil {
		res.Error = err.Error()
		res.Problems = problemsOf(err)
		log.WithError(err).Warn("uplink: command refused or failed")
	} else {
		res.OK = true
		log.Info("uplink: command done")
	}
	if c == nil {
		return
	}
	p, _ := json.Marshal(res)
	c.Publish(u.t.cmdResult(id), 1, false, p)
}

// parseCommand checks a command's form (signature or unsigned policy, see
// cmdauth) and decodes it.
func (u *Uplink) parseCommand(name string, payload []byte) (commandRequest, cmdauth.Envelope, error) {
	var req commandRequest
	if limit := commandSizeLimit(name); len(payload) > limit {
		return req, cmdauth.Envelope{}, fmt.Errorf("%w: %d bytes (max %d)", ErrCommandMalformed, len(payload), limit)
	}
	env, err := u.verifier.Decode(name, payload, &req)
	// The envelope is the truth (a token's jti, sub, cmd); what decoded is
	// the rest. The id is kept even when refused: the answer goes there.
	req.ID, req.Command, req.Meter = env.ID, env.Command, env.Meter
	if err != nil {
		return req, env, err
	}
	if !commandID.MatchString(req.ID) {
		return req, env, fmt.Errorf("%w: id %q must be 1-64 of [A-Za-z0-9_.-]", ErrCommandMalformed, req.ID)
	}
	return req, env, nil
}

// execute runs one command in its turn: the replay window, the expiry, then
// the handler.
func (u *Uplink) execute(j cmdJob) (any, error) {
	req, env := j.req, j.env
	now := time.Now()
	_, actuation := u.cfg.commandPolicies()[req.Command]
	if env.Signed || actuation {
		until := now.Add(cmdauth.UnsignedWindow)
		if env.Signed {
			until = env.NotAfter.Add(cmdauth.DefaultLeeway)
		}
		if err := u.replay.Remember(req.ID, until, now); err != nil {
			if errors.Is(err, buffer.ErrReplayed) {
				return nil, fmt.Errorf("%w: %q", ErrCommandReplayed, req.ID)
			}
			return nil, fmt.Errorf("replay window: %w (command not run)", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	if env.Signed {
		if !now.Before(env.NotAfter) {
			return nil, fmt.Errorf("%w (exp %s)", ErrCommandExpired, env.NotAfter.Format(time.RFC3339))
		}
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, env.NotAfter)
		defer c2()
	}
	return u.runCommand(ctx, req, env)
}

func (u *Uplink) runCommand(ctx context.Context, req commandRequest, env cmdauth.Envelope) (any, error) {
	switch req.Command {
	case "ping":
		return map[string]any{"gateway": u.cfg.Gateway, "time": time.Now().UTC(), "version": Version}, nil
	case "read", "set_interval", "valve", "backfill":
	case "config", "meters_upsert", "meters_remove", "config_get":
		return u.configCommand(ctx, req, env)
	default:
		return nil, fmt.Errorf("%w: %q (want ping, read, set_interval, valve, backfill, config, meters_upsert, meters_remove or config_get)", ErrCommandUnknown, req.Command)
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
		sender := "mqtt unsigned"
		if env.Signed {
			sender = "mqtt signed kid=" + env.KeyID
		}
		return vh.Valve(ctx, ValveRequest{ID: req.ID, Meter: req.Meter, Action: req.Action, Operator: env.Operator, Sender: sender, NotAfter: env.NotAfter})
	}
	if req.Command == "backfill" {
		bh, ok := u.cmds.(BackfillHandler)
		from, ferr := time.Parse(time.RFC3339, req.From)
		to, terr := time.Parse(time.RFC3339, req.To)
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: backfill is not served by this gateway", ErrCommandUnknown)
		case ferr != nil || terr != nil || to.Before(from):
			return nil, fmt.Errorf("%w: backfill wants from and to as RFC 3339 times, from before to", ErrCommandMalformed)
		}
		return bh.Backfill(ctx, req.Meter, from, to)
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
