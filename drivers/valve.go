package drivers

import (
	"context"
	"errors"
	"fmt"

	"tidegate/drivers/link"
	"tidegate/reading"
)

// Valve errors.
var (
	// ErrValveNotEnabled: valve control is opt-in per meter (valve: true).
	ErrValveNotEnabled = errors.New("valve control is not enabled for this meter (set valve: true in its config)")
	// ErrNoValveControl: the meter's protocol has no valve write.
	ErrNoValveControl = errors.New("this meter's protocol has no valve control")
)

// Valve outcomes, in ValveResult.Outcome and the valve event.
const (
	ValveDone     = "done"     // the meter accepted the write and the status read back shows the valve as asked
	ValveMismatch = "mismatch" // accepted, but the status read back shows the valve otherwise (stuck, still moving)
	ValveRefused  = "refused"  // the meter answered with its error bit
	ValveFailed   = "failed"   // no answer, garbled answer, line trouble
)

type valveOp struct {
	request string // the command's request id, carried into the event
	open    bool
	by      ValveOrder
}

// ValveOrder says who asked for a valve movement; its fields go into the
// valve event beside the request id, so every movement names its sender.
type ValveOrder struct {
	Operator string // the person at the utility, if the command says
	Sender   string // how it came: "mqtt signed kid=k1", "socket uid=0 gid=0"
}

// ValveResult is what a valve command did.
type ValveResult struct {
	Meter   string
	Request string
	Action  string // open or close
	Outcome string // "" when nothing was sent (the error is then a link.ErrNotSent or the bus's)
	Valve   string // the valve as read back afterwards: open, closed, abnormal, unknown
	Error   string
	Reading reading.Reading // the read-back; Quality error when it failed
}

// valvePoller is a poller whose meters may have a valve: it sends the
// write and returns the valve state the meter answers with ("" if none).
type valvePoller interface {
	valve(ctx context.Context, m *meterState, open bool) (string, error)
}

// Valve opens or closes a meter's valve, between scheduled polls: the write
// is sent, the meter's answer checked, the status read back (that reading
// goes to the sink as usual), and a "valve" event with the request id and
// the outcome goes to the sink. A meter without valve: true is refused
// before anything is sent.
//
// ctx bounds the command, the write included: once it has ended (its
// deadline: the command's expiry) the write is never sent, and the error
// is link.ErrNotSent (errors.Is); a write that was sent and not answered
// is link.ErrNoAnswer.
func (b *Bus) Valve(ctx context.Context, meterID, requestID string, open bool) (ValveResult, error) {
	return b.ValveBy(ctx, meterID, requestID, open, ValveOrder{})
}

// ValveBy is Valve with who asked, for the event.
func (b *Bus) ValveBy(ctx context.Context, meterID, requestID string, open bool, by ValveOrder) (ValveResult, error) {
	ms := b.meter(meterID)
	if ms == nil {
		return ValveResult{}, fmt.Errorf("no meter %q on bus %s", meterID, b.cfg.Name)
	}
	if !ms.cfg.CJT.Valve {
		return ValveResult{}, fmt.Errorf("meter %s: %w", meterID, ErrValveNotEnabled)
	}
	req := readReq{ctx: ctx, meter: meterID, valve: &valveOp{request: requestID, open: open, by: by}, reply: make(chan readResult, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return ValveResult{}, fmt.Errorf("bus %s is busy or not open: %w", b.cfg.Name, link.NotSent(ctx.Err()))
	}
	// Once the bus has the command, its answer says whether the write went
	// out, even after ctx has ended (the bus stops work on it then).
	res, err := b.await(req)
	return res.valve, err
}

// doValve runs on the bus goroutine.
func (b *Bus) doValve(ctx context.Context, p poller, m *meterState, op valveOp) (ValveResult, error) {
	res := ValveResult{Meter: m.cfg.ID, Request: op.request, Action: "close", Valve: "unknown"}
	if op.open {
		res.Action = "open"
	}
	vp, ok := p.(valvePoller)
	if !ok {
		return res, fmt.Errorf("meter %s: %w", m.cfg.ID, ErrNoValveControl)
	}
	// The write is idempotent (closed is closed), so a lost or garbled
	// answer is retried like a poll; a refusal is final.
	var err, sentErr error
	sent := false
	for attempt := 0; attempt <= max(b.cfg.Retries, 0); attempt++ {
		_, err = vp.valve(ctx, m, op.open)
		if errors.Is(err, link.ErrNotSent) {
			if sent {
				err = sentErr // the last write that went out is what counts
			}
			break
		}
		sent, sentErr = true, err
		if err == nil || isRefusal(err) || link.Classify(err) != link.FaultMeter || ctx.Err() != nil {
			break
		}
	}
	if !sent {
		// Nothing went out: no outcome and no event here; the caller
		// accounts for a command that never reached the meter.
		return res, fmt.Errorf("meter %s: %w", m.cfg.ID, err)
	}
	switch {
	case err == nil:
		res.Outcome = ValveDone
	case isRefusal(err):
		res.Outcome, res.Error = ValveRefused, err.Error()
	default:
		res.Outcome, res.Error = ValveFailed, err.Error()
	}
	if link.Classify(err) != link.FaultLine && ctx.Err() == nil {
		// Read the status back: what the meter says now, not what it said
		// it would do.
		r, perr := b.pollOnce(ctx, p, m, false)
		res.Reading = r
		if perr == nil {
			b.deliver(m, r, reading.KindReading)
			res.Valve = "open"
			switch {
			case r.Status&reading.StatusValveClosed != 0:
				res.Valve = "closed"
			case r.Status&reading.StatusMeterError != 0:
				res.Valve = "abnormal"
			}
			if res.Outcome == ValveDone && res.Valve != map[bool]string{true: "open", false: "closed"}[op.open] {
				res.Outcome = ValveMismatch
			}
		}
	}
	if res.Outcome == ValveFailed && ctx.Err() != nil && errors.Is(err, link.ErrNoAnswer) {
		// The command's deadline ended with the write on the line and
		// unanswered: the meter may have acted. The caller, whose deadline
		// it was, accounts for that as one "unknown" event with the status
		// read back on a context of its own; a "failed" event here would
		// be a second, wrong account of the same command.
		b.log.WithField("meter", m.cfg.ID).WithField("request", op.request).Infof("valve %s: no answer before the command's deadline: %v", res.Action, err)
		return res, err
	}
	msg := fmt.Sprintf("valve %s: %s, valve %s", res.Action, res.Outcome, res.Valve)
	if res.Error != "" {
		msg += ": " + res.Error
	}
	attrs := map[string]string{
		"bus": b.cfg.Name, "request": op.request, "action": res.Action, "outcome": res.Outcome, "valve": res.Valve,
	}
	if op.by.Operator != "" {
		attrs["operator"] = op.by.Operator
	}
	if op.by.Sender != "" {
		attrs["sender"] = op.by.Sender
	}
	b.sink.Event(reading.Event{Time: b.now(), Meter: m.cfg.ID, Type: "valve", Message: msg, Attrs: attrs})
	b.log.WithField("meter", m.cfg.ID).WithField("request", op.request).Info(msg)
	if res.Outcome == ValveFailed || res.Outcome == ValveRefused {
		return res, err
	}
	return res, nil
}
