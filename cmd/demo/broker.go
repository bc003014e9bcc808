package main

import (
	"io"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// broker is an embedded MQTT broker on a free loopback port, with an
// in-process subscriber for the demo's view.
type broker struct {
	srv  *mqtt.Server
	addr string
}

func startBroker() (*broker, error) {
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, err
	}
	ln := listeners.NewTCP(listeners.Config{ID: "demo", Address: "127.0.0.1:0"})
	if err := srv.AddListener(ln); err != nil {
		return nil, err
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	return &broker{srv: srv, addr: ln.Address()}, nil
}

func (b *broker) subscribe(filter string, fn func(topic string, payload []byte)) error {
	return b.srv.Subscribe(filter, 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
}

func (b *broker) close() { _ = b.srv.Close() }

// allowAll lets every loopback client in; the demo broker listens on
// 127.0.0.1 only. (mochi's own auth hook pulls in gopkg.in/yaml.v3.)
type allowAll struct{ mqtt.HookBase }

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
