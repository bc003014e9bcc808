package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/drivers"
	"tidegate/drivers/link"
	"tidegate/reading"
)

// Valve refusals made by the gateway itself, before anything is sent.
var (
	// ErrBadValveAction: the action is neither open nor close.
	ErrBadValveAction = errors.New("valve action must be open or close")
	// ErrValveRate: the meter's valve moved less than valve_min_interval ago.
	ErrValveRate = errors.New("valve rate limit: one movement per meter per valve_min_interval")
	// ErrValveExpired: the command's validity ended before its turn on the line.
	ErrValveExpired = errors.New("command expired before it reached the line; nothing was sent")
)

// ValveJSON is a valve command's result for the API and the downlink.
type ValveJSON struct {
	Meter   string              `json:"meter"`
	Request string              `json:"request,omitempty"`
	Action  string              `json:"action"`
	Outcome string              `json:"outcome"`
	Valve   string              `json:"valve"` // as read back after the write
	Error   string              `json:"error,omitempty"`
	Reading *reading.RecordJSON `json:"reading,omitempty"` // the status read back, in the record's one encoding
}

// valveRequest is one valve command, from the downlink or the socket.
type valveRequest struct {
	ID, Meter, Action string
	Operator          string    // the utility's person, if said
	Sender            string    // "mqtt signed kid=k1", "socket uid=0 gid=0"
	NotAfter          time.Time // zero: no expiry beyond the caller's context
}

// valve checks a valve command against the running config and the rate
// limit and sends it to the meter's bus. Every command that names a
// configured meter leaves a valve event: the bus's (done, mismatch,
// refused, failed, with the status read back) once something was sent, or
// the gateway's own "refused: <reason>" when nothing was.
func (d *Daemon) valve(ctx context.Context, r valveRequest) (ValveJSON, error) {
	if r.Action != "open" && r.Action != "close" {
		return ValveJSON{}, fmt.Errorf("%w, not %q", ErrBadValveAction, r.Action)
	}
	cfg := d.config()
	m, ok := cfg.MeterByID(r.Meter)
	if !ok {
		return ValveJSON{}, fmt.Errorf("%w: %q", ErrUnknownMeter, r.Meter)
	}
	refuse := func(err error) (ValveJSON, error) {
		d.valveRefused(r, m.ID, err)
		return ValveJSON{}, err
	}
	if !m.Valve {
		return refuse(fmt.Errorf("meter %s: %w", m.ID, drivers.ErrValveNotEnabled))
	}
	d.mu.Lock()
	b := d.buses[m.Bus]
	d.mu.Unlock()
	if b == nil {
		return refuse(fmt.Errorf("bus %q of meter %q is not running", m.Bus, m.ID))
	}
	now := time.Now()
	if !r.NotAfter.IsZero() {
		if !now.Before(r.NotAfter) {
			return refuse(ErrValveExpired)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, r.NotAfter) // never sent after the token's exp
		defer cancel()
	}
	d.valveMu.Lock()
	if last, ok := d.lastValve[m.ID]; ok && now.Sub(last) < m.ValveInterval() {
		d.valveMu.Unlock()
		return refuse(fmt.Errorf("%w (%s; last %s ago)", ErrValveRate, m.ValveInterval(), now.Sub(last).Round(time.Second)))
	}
	if d.lastValve == nil {
		d.lastValve = map[string]time.Time{}
	}
	d.lastValve[m.ID] = now
	d.valveMu.Unlock()

	res, err := b.valve(ctx, m.ID, r.ID, r.Action == "open", drivers.ValveOrder{Operator: r.Operator, Sender: r.Sender})
	if ctx.Err() != nil && (res.Outcome == "" && !errors.Is(err, link.ErrNotSent) ||
		res.Outcome == drivers.ValveFailed && errors.Is(err, link.ErrNoAnswer)) {
		// The deadline (the token's exp, or the caller's) ended while the
		// write was on the line, or the bus did not say: it may have moved
		// the valve. That is "unknown", and the status is read back. A
		// write the bus never sent (link.ErrNotSent) is "not sent" below.
		return d.valveUnknown(b, r, m.ID, err), err
	}
	if res.Outcome == "" {
		// Never reached the meter (bus not open, no drivers): no movement,
		// so it does not count against the rate limit.
		d.valveMu.Lock()
		if d.lastValve[m.ID].Equal(now) {
			delete(d.lastValve, m.ID)
		}
		d.valveMu.Unlock()
		if err == nil {
			err = errors.New("no result from the bus")
		}
		return refuse(fmt.Errorf("not sent: %w", err))
	}
	j := ValveJSON{Meter: m.ID, Request: r.ID, Action: res.Action, Outcome: res.Outcome, Valve: res.Valve, Error: res.Error}
	if res.Reading.Meter != "" {
		rec := liveRecord(&res.Reading)
		j.Reading = &rec
	}
	return j, err
}

// ValveUnknown is the outcome of a command whose deadline passed while it
// was queued for or on the line.
const ValveUnknown = "unknown"

// valveUnknown reads the valve's state back with a context of its own (the
// command's has ended) and accounts for the command as "unknown".
func (d *Daemon) valveUnknown(b *busRun, r valveRequest, meter string, why error) ValveJSON {
	j := ValveJSON{Meter: meter, Request: r.ID, Action: r.Action, Outcome: ValveUnknown, Valve: "unknown", Error: why.Error()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The bus may still be finishing the write, or reopening its line
	// after the cut-short transaction: ask again until the read-back's own
	// deadline rather than give up on the first refusal.
	rd, err := b.readNow(ctx, meter)
	for err != nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
			rd, err = b.readNow(ctx, meter)
		}
	}
	if err != nil {
		d.log.WithFields(logrus.Fields{"meter": meter, "request": r.ID}).WithError(err).Warn("valve read-back failed")
	}
	if err == nil {
		j.Valve = "open"
		switch {
		case rd.Status&reading.StatusValveClosed != 0:
			j.Valve = "closed"
		case rd.Status&reading.StatusMeterError != 0:
			j.Valve = "abnormal"
		}
		rec := liveRecord(&rd)
		j.Reading = &rec
	}
	d.valveEvent(r, meter, ValveUnknown, j.Valve, fmt.Sprintf("valve %s: unknown (%v), valve %s", r.Action, why, j.Valve))
	return j
}

// valveRefused accounts for a valve command the gateway refused itself.
func (d *Daemon) valveRefused(r valveRequest, meter string, why error) {
	d.valveEvent(r, meter, "refused: "+why.Error(), "unknown", fmt.Sprintf("valve %s: refused: %v", r.Action, why))
}

// valveEvent is the gateway's own valve event, for what never got a bus's.
func (d *Daemon) valveEvent(r valveRequest, meter, outcome, valve, msg string) {
	attrs := map[string]string{"request": r.ID, "action": r.Action, "outcome": outcome, "valve": valve}
	if r.Operator != "" {
		attrs["operator"] = r.Operator
	}
	if r.Sender != "" {
		attrs["sender"] = r.Sender
	}
	d.ingest(reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: time.Now(), Meter: meter, Type: "valve", Message: msg, Attrs: attrs}})
	d.log.WithFields(logrus.Fields{"meter": meter, "request": r.ID, "sender": r.Sender, "operator": r.Operator}).Warn(msg)
}
