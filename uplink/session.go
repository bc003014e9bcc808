package uplink

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// A fresh paho client for every connection. With paho's own reconnect a
// Publish that was queued inside the client (its outbound channel) when the
// connection dropped goes out first on the next connection, ahead of the
// window the pump sends again from the buffer, and a later batch reaches
// the service before an earlier one. A client that never reconnects cannot
// carry anything across: what it still holds fails with the connection (or
// times out), and the pump, which sees the new epoch before it publishes on
// the new client, sends everything unacknowledged again in buffer order.

// runSessions connects, runs the pump (restarted after every error, see
// supervise.go) and, whenever a connection is lost, makes the next client,
// until ctx ends.
func (u *Uplink) runSessions(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		u.connectLoop(ctx)
	}()
	err := u.superviseSend(ctx, u.currentClient)
	cancel()
	wg.Wait()
	return err
}

// connectLoop keeps one connection up, fleet-safe (Config.ReconnectJitter
// and below): a fleet that lost its broker together, or booted together
// after a power cut, comes back spread over the jitter window, each box at
// most 60 s / ConnectGap times a minute, and a box notices a returning
// broker by a TCP probe instead of waiting out a long backoff.
func (u *Uplink) connectLoop(ctx context.Context) {
	var last time.Time // of the last attempt
	fails := 0
	wait := u.spread() // the first connect after start
	for ctx.Err() == nil {
		// The wait counts from the end of the gap, not into it: clamping
		// to the gap would gather every box of a fleet at last+gap, and
		// the fleet would keep the phase of its first failed attempts.
		at := time.Now()
		if !last.IsZero() {
			if g := last.Add(u.cfg.ConnectGap); at.Before(g) {
				at = g
			}
		}
		at = at.Add(wait)
		if !u.waitToConnect(ctx, at, last) {
			return
		}
		select { // a loss reported for an older client is not this one's
		case <-u.lost:
		default:
		}
		last = time.Now()
		u.count(func(s *Stats) { s.ConnectAttempts++ })
		u.log.WithField("failed_before", fails).Debug("uplink: connecting")
		c := paho.NewClient(u.options()) // the will is built now, with this connection's time
		tok := c.Connect()
		select {
		case <-ctx.Done():
			c.Disconnect(0)
			return
		case <-tok.Done():
		}
		if tok.Error() != nil { // logged by the connection notification handler
			fails++
			// Never narrower than the spread: a fleet whose first attempts
			// failed together would otherwise retry within a second of
			// each other, and come back in that second.
			wait = fullJitter(fails, u.cfg.ReconnectMin, u.cfg.ReconnectMax, u.cfg.ReconnectJitter)
			continue
		}
		fails = 0
		select {
		case <-ctx.Done():
			return // Run says offline and disconnects this client
		case <-u.lost:
			c.Disconnect(0)
			// A loss the uplink decided itself (lastseq.go) gets no
			// connection-lost callback from paho.
			u.connected.Store(false)
			u.epoch.Add(1)
			u.signal()
			wait = u.spread()
		}
	}
}

// spread is the random wait before a first connect (after start, after a
// lost connection): the whole fleet does this at the same moment.
func (u *Uplink) spread() time.Duration {
	if j := u.cfg.ReconnectJitter; j > 0 {
		return rand.N(j)
	}
	return 0
}

// fullJitter is a wait drawn from [0, max(floor, min(ceiling, base × 2^(n-1)))].
func fullJitter(n int, base, ceiling, floor time.Duration) time.Duration {
	d := ceiling
	if n < 31 {
		d = min(ceiling, base<<(n-1))
	}
	d = max(d, floor)
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// waitToConnect sleeps until at, probing the broker's TCP port every
// ProbeInterval. A probe that connects moves at forward to a fresh draw
// from the spread (never past the gap after last): the broker is back, so
// there is no need to sit out a minute's backoff, but the fleet still
// arrives spread. It returns false when ctx ends.
func (u *Uplink) waitToConnect(ctx context.Context, at, last time.Time) bool {
	probed := false
	for {
		d := time.Until(at)
		if d <= 0 {
			return ctx.Err() == nil
		}
		step := d
		if !probed && step > u.cfg.ProbeInterval {
			step = u.cfg.ProbeInterval
		}
		if sleepCtx(ctx, step) != nil {
			return false
		}
		if probed || !time.Now().Before(at) || !u.probe(ctx) {
			continue
		}
		probed = true
		sooner := time.Now().Add(u.spread())
		if !last.IsZero() {
			if g := last.Add(u.cfg.ConnectGap); sooner.Before(g) {
				sooner = g
			}
		}
		if sooner.Before(at) {
			at = sooner
		}
	}
}

// probe says whether the broker's TCP port accepts a connection now.
func (u *Uplink) probe(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, min(u.cfg.ProbeInterval, 2*time.Second))
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.broker.Host)
	if err != nil {
		return false
	}
	c.Close()
	u.count(func(s *Stats) { s.Probes++ })
	return true
}

func (u *Uplink) signalLost() {
	select {
	case u.lost <- struct{}{}:
	default:
	}
}

func (u *Uplink) currentClient() paho.Client {
	if c := u.client.Load(); c != nil {
		return *c
	}
	return nil
}
