package uplink

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"tidegate/buffer"
)

// ErrPanic wraps a panic recovered in the uplink's own sending loop: a bug,
// logged with its stack, and the loop is started again.
var ErrPanic = errors.New("uplink: panic")

// Part states, as status, /metrics and the retained status show them.
const (
	StateRunning    = "running"
	StateRestarting = "restarting"
)

// superviseSend runs the pump until ctx ends. Whatever ends it early (a
// queue error on Read or Ack, a full disk, a damaged page the buffer moves
// aside, a panic) costs a restart after a full-jitter backoff, never the
// uplink: the pump starts again from the buffer's cursor, so everything not
// acknowledged is sent again, in order. A run that lasted longer than
// RestartMax resets the backoff.
func (u *Uplink) superviseSend(ctx context.Context, client func() paho.Client) error {
	fails := 0
	for {
		u.setState(StateRunning, nil)
		t0 := time.Now()
		err := u.pumpSafe(ctx, client)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			err = errors.New("uplink: pump returned without an error")
		}
		if time.Since(t0) > u.cfg.RestartMax {
			fails = 0
		}
		fails++
		wait := fullJitter(fails, u.cfg.RestartMin, u.cfg.RestartMax, 0)
		u.setState(StateRestarting, err)
		u.log.WithError(err).WithFields(logrus.Fields{"restarts": u.Stats().Restarts, "retry_in": wait.Round(time.Millisecond).String(), "class": classify(err)}).
			Error("uplink: sending stopped; restarting")
		if err := u.waitRestart(ctx, wait); err != nil {
			return err
		}
	}
}

// waitRestart sleeps out a restart backoff, answering liveness probes.
func (u *Uplink) waitRestart(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case ch := <-u.alive:
			close(ch)
		}
	}
}

func (u *Uplink) pumpSafe(ctx context.Context, client func() paho.Client) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
			u.log.WithField("stack", string(debug.Stack())).WithError(err).Error("uplink: panic in the sending loop")
		}
	}()
	return u.pump(ctx, client)
}

func (u *Uplink) setState(state string, err error) {
	u.mu.Lock()
	u.stats.State = state
	if err != nil {
		u.stats.Restarts++
		u.stats.RestartError = err.Error()
	}
	u.mu.Unlock()
}

// Alive says whether the sending loop turns: it answers within ctx (a
// watchdog asks). A loop wedged inside a queue call or a publish does not.
func (u *Uplink) Alive(ctx context.Context) bool {
	ch := make(chan struct{})
	select {
	case u.alive <- ch:
	case <-ctx.Done():
		return false
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// classify names an error of the sending loop for the log, with errors.Is
// on the buffer's sentinels: "panic" (a bug), "corrupt" (the buffer moved a
// damaged file aside and salvaged it; sending goes on from the fresh one),
// "full" (the buffer evicts by its rules), or "transient" (an EIO and the
// like). The uplink's answer is the same for all: start again after a
// backoff, from the cursor.
func classify(err error) string {
	switch {
	case errors.Is(err, ErrPanic):
		return "panic"
	case errors.Is(err, buffer.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, buffer.ErrFull):
		return "full"
	}
	return "transient"
}
