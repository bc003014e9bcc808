package uplink

import (
	"context"
	"math/rand/v2"
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

// runSessions connects, runs the pump and, whenever a connection is lost,
// makes the next client, until ctx ends.
func (u *Uplink) runSessions(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		u.connectLoop(ctx)
	}()
	err := u.pump(ctx, u.currentClient)
	cancel()
	wg.Wait()
	return err
}

// connectLoop keeps one connection up: it dials with paho's options for a
// single connection, waits for that connection to be lost, and dials again
// after a backoff (1 s doubling up to reconnect_max, plus jitter) while the
// broker refuses.
func (u *Uplink) connectLoop(ctx context.Context) {
	wait := time.Duration(0)
	for ctx.Err() == nil {
		if wait > 0 {
			if j := u.cfg.ReconnectJitter; j > 0 {
				wait += rand.N(j) // spread a fleet's reconnects
			}
			if sleepCtx(ctx, wait) != nil {
				return
			}
		}
		select { // a loss reported for an older client is not this one's
		case <-u.lost:
		default:
		}
		c := paho.NewClient(u.options()) // the will is built now, with this connection's time
		tok := c.Connect()
		select {
		case <-ctx.Done():
			c.Disconnect(0)
			return
		case <-tok.Done():
		}
		if tok.Error() != nil { // logged by the connection notification handler
			wait = min(max(2*wait, time.Second), u.cfg.ReconnectMax)
			continue
		}
		wait = 0
		select {
		case <-ctx.Done():
			return // Run says offline and disconnects this client
		case <-u.lost:
			c.Disconnect(0)
			wait = time.Second // as paho: a connection that drops is not retried at once
		}
	}
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

// runNaive is the #563 test's naive client: one paho client that
// reconnects by itself, with paho's memory store. Its pump starts once the
// first connection is complete: with a clean session paho empties its store
// when the first CONNACK comes, and a publish stored while connecting would
// be dropped unsent with its token never completed (that, not #563, made the
// test's unprotected case time out under load).
func (u *Uplink) runNaive(ctx context.Context) error {
	c := paho.NewClient(u.options())
	u.client.Store(&c)
	tok := c.Connect() // ConnectRetry: completes when first connected
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tok.Done():
	}
	return u.pump(ctx, func() paho.Client { return c })
}
