// Package broker runs an embedded MQTT broker (mochi-mqtt) for tests and the
// demo, and a TCP proxy that can misbehave on purpose (withhold PUBACKs, cut
// connections) so delivery guarantees can be proved against a real client.
// It is not a production broker: mochi is unmaintained since 2025-03.
package broker

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a running embedded broker that accepts any client.
type Broker struct {
	srv  *mqtt.Server
	tcp  *listeners.TCP
	hook *allowAll
}

// Start listens on addr ("127.0.0.1:0" picks a free port; see Addr) and
// serves MQTT 3.1.1 and 5 until Close. The broker's own logging is discarded
// because tests drown in it; errors that matter surface at the client.
func Start(addr string) (*Broker, error) { return start(addr, nil) }

// StartCounting is Start with fn (as OnConnect) called from the first
// CONNECT on: a client already dialling when the port opens is accepted
// before Start returns, and OnConnect after Start would miss it.
func StartCounting(addr string, fn func(clientID string)) (*Broker, error) {
	return start(addr, fn)
}

func start(addr string, onConnect func(clientID string)) (*Broker, error) {
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	hook := new(allowAll)
	if onConnect != nil {
		hook.connect.Store(&onConnect)
	}
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	return &Broker{srv: srv, tcp: tcp, hook: hook}, nil
}

// Addr is the host:port the broker listens on, with the real port when
// Start was given port 0.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL is Addr as a paho broker URL.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Subscribe delivers every message published on topics matching filter to
// fn, in-process (mochi's inline client): a subscriber that needs no
// connection of its own, as the demo's view.
func (b *Broker) Subscribe(filter string, fn func(topic string, payload []byte)) error {
	return b.srv.Subscribe(filter, 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
}

// DenySubscribe makes the broker refuse subscriptions to topic (SUBACK
// failure), as a broker's ACL does; "" allows all again.
func (b *Broker) DenySubscribe(topic string) { b.hook.deny.Store(&topic) }

// OnConnect calls fn with the client id of every CONNECT the broker takes
// (before authentication), so a test can count a fleet's connects.
func (b *Broker) OnConnect(fn func(clientID string)) { b.hook.connect.Store(&fn) }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error { return b.srv.Close() }

// allowAll admits every client and topic. mochi's own auth.AllowHook would do,
// but its package pulls in gopkg.in/yaml.v3, which this module does not carry.
type allowAll struct {
	mqtt.HookBase
	deny    atomic.Pointer[string]
	connect atomic.Pointer[func(string)]
}

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnConnect
}

func (h *allowAll) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	if fn := h.connect.Load(); fn != nil {
		(*fn)(cl.ID)
	}
	return nil
}

func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	d := h.deny.Load()
	return write || d == nil || *d == "" || topic != *d
}
