package broker

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func connect(t *testing.T, url, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestBrokerRoundTrip(t *testing.T) {
	b, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Addr() == "127.0.0.1:0" {
		t.Fatalf("Addr did not report the real port: %s", b.Addr())
	}
	got, inline := make(chan string, 1), make(chan string, 1)
	if err := b.Subscribe("a/#", func(topic string, payload []byte) { inline <- topic + " " + string(payload) }); err != nil {
		t.Fatal(err)
	}
	sub := connect(t, b.URL(), "sub")
	if tok := sub.Subscribe("a/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub := connect(t, b.URL(), "pub")
	if tok := pub.Publish("a/b", 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	expect(t, got, "hello", "the MQTT subscriber")
	expect(t, inline, "a/b hello", "the in-process subscriber")
}

func expect(t *testing.T, ch <-chan string, want, who string) {
	t.Helper()
	select {
	case s := <-ch:
		if s != want {
			t.Fatalf("%s got %q, want %q", who, s, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("message not delivered to %s", who)
	}
}

func TestProxySwallowsPubacks(t *testing.T) {
	b, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := NewProxy("127.0.0.1:0", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := connect(t, p.URL(), "pub")
	if tok := c.Publish("x", 1, false, "one"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish through a passing proxy: %v", tok.Error())
	}
	p.SwallowPubacks(true)
	tok := c.Publish("x", 1, false, "two")
	if tok.WaitTimeout(500 * time.Millisecond) {
		t.Fatalf("publish completed although its PUBACK was swallowed (err %v)", tok.Error())
	}
	if p.Swallowed() != 1 {
		t.Fatalf("swallowed %d PUBACKs, want 1", p.Swallowed())
	}
	p.CutAll()
	deadline := time.Now().Add(5 * time.Second)
	for c.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.IsConnectionOpen() {
		t.Fatal("client still connected after CutAll")
	}
}
