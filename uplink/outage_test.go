package uplink

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// service plays the central service in application-ack mode: it stores what
// arrives, drops duplicates by id, and publishes on .../ack the highest seq
// up to which it holds everything.
type service struct {
	*collector
	mu   sync.Mutex
	have map[uint64]bool
	high uint64
}

// TestMosquittoKilledMidStream SIGKILLs mosquitto while a backlog drains,
// restarts it, and checks that every reading arrives in order, each id once
// after dedup, and the buffer ends fully acknowledged.
//
// It runs in application-ack mode: a PUBACK only proves that the broker had
// the message, and a broker SIGKILLed without persistence loses what it had
// acknowledged but not yet forwarded; only the service's own ack closes that
// gap. The uplink reaches mosquitto through a proxy that refuses connections
// until the test's subscriber is back, so nothing is published to a broker
// with nobody subscribed.
func TestMosquittoKilledMidStream(t *testing.T) {
	needMosquitto(t)
	m := startMosquitto(t, "")
	px := startProxy(t, strings.TrimPrefix(m.url("tcp"), "tcp://"))
	q := openBuffer(t)
	last := fill(t, q, 20000, 25)

	sub := subscribe(t, m.url("tcp"), "test")
	svc := &service{collector: sub, have: map[uint64]bool{}}
	ackc := paho.NewClient(paho.NewClientOptions().AddBroker(m.url("tcp")).SetClientID("service-ack").
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(200 * time.Millisecond))
	ackc.Connect().WaitTimeout(5 * time.Second)
	defer ackc.Disconnect(50)
	stopAcks := make(chan struct{})
	defer close(stopAcks)
	go func() {
		for {
			select {
			case <-stopAcks:
				return
			case <-time.After(50 * time.Millisecond):
			}
			got, _ := sub.unique()
			svc.mu.Lock()
			for _, s := range got {
				svc.have[s] = true
			}
			for svc.have[svc.high+1] {
				svc.high++
			}
			h := svc.high
			svc.mu.Unlock()
			if h > 0 && ackc.IsConnectionOpen() {
				p, _ := json.Marshal(map[string]any{"id": recordID("gw1", h)})
				ackc.Publish("test/v1/gw1/ack", 1, false, p)
			}
		}
	}()

	cfg := testConfig(px.URL())
	cfg.Ack = AckApplication
	log, _ := quietLog(t)
	u, err := New(cfg, q, log)
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)

	waitFor(t, 20*time.Second, "a part of the backlog delivered", func() bool { return q.Cursor() > 2000 })
	px.Refuse(true)
	m.kill()
	midway := q.Cursor()
	time.Sleep(1500 * time.Millisecond) // outage: the uplink retries against a dead broker
	if u.Connected() {
		t.Fatal("uplink reports connected during the outage")
	}
	m.start()
	waitFor(t, 10*time.Second, "subscriber back", func() bool {
		sub.mu.Lock()
		n := len(sub.payloads["test/probe"])
		sub.mu.Unlock()
		return n > 0
	})
	// the probe count only grows; publish a fresh one and wait for it
	sub.mu.Lock()
	probes := len(sub.payloads["test/probe"])
	sub.mu.Unlock()
	waitFor(t, 10*time.Second, "subscriber resubscribed", func() bool {
		ackc.Publish("test/probe", 1, false, "y").WaitTimeout(time.Second)
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.payloads["test/probe"]) > probes
	})
	px.Refuse(false)

	waitFor(t, 60*time.Second, "buffer fully acknowledged", func() bool { return q.Cursor() == last })
	got, dups := sub.unique()
	checkAll(t, got, last)
	s := u.Stats()
	if midway >= last || s.ConnectionLost == 0 {
		t.Fatalf("the outage did not happen mid-stream (cursor %d of %d at the kill, stats %+v)", midway, last, s)
	}
	t.Logf("%d readings; killed at cursor %d; %d duplicates dropped by id; %d messages resent; %d app acks", last, midway, dups, s.Resent, s.AppAcks)
}
