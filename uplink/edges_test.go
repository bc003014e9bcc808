package uplink

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// A broker that refuses the ack subscription (an ACL without the topic):
// in application mode nothing could ever drain. The refusal is an error the
// uplink reports and retries; once the broker allows it, acks drain the
// buffer. (Before: the SUBACK was never looked at; draining stopped in
// silence.)
func TestRefusedAckSubscriptionIsAnError(t *testing.T) {
	br := startMochi(t)
	cfg := testConfig(br.URL())
	cfg.Ack = AckApplication
	ackTopic := newTopics(cfg.TopicPrefix, cfg.Gateway).ack
	br.DenySubscribe(ackTopic)
	q := openBuffer(t)
	last := fill(t, q, 20, 2)
	u, err := New(cfg, q, quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)
	waitFor(t, 20*time.Second, "the refusal reported", func() bool {
		s := u.Stats()
		return s.SubscribeErrs > 0 && strings.Contains(s.LastError, "subscription refused") && strings.Contains(s.LastError, ackTopic)
	})
	br.DenySubscribe("")
	// The service acks everything; the retried subscription must get it.
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("svc"))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(50)
	waitFor(t, 60*time.Second, "drained by application acks", func() bool {
		pub.Publish(ackTopic, 1, false, fmt.Sprintf(`{"id":"gw1:%d"}`, last)).Wait()
		return q.Cursor() >= last
	})
}

// A Last Will the broker publishes after the gateway's "online" (the old
// session's, noticed late) must not leave the retained status saying
// offline while the gateway is online. (Before: TestLastWill once saw
// online, online, offline.)
func TestLateWillAnsweredWithOnline(t *testing.T) {
	br := startMochi(t)
	cfg := testConfig(br.URL())
	status := newTopics(cfg.TopicPrefix, cfg.Gateway).status
	u, err := New(cfg, openBuffer(t), quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)
	waitFor(t, 10*time.Second, "connected", u.Connected)
	// What the broker does with a stale session's will: a retained
	// offline, published by someone else, after our online.
	late := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("stale-session"))
	if tok := late.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer late.Disconnect(50)
	late.Publish(status, 1, true, `{"gateway":"gw1","state":"offline","time":"2026-11-23T00:00:00Z"}`).Wait()
	waitFor(t, 20*time.Second, "the retained status online again", func() bool {
		return strings.Contains(retained(t, br.URL(), status), `"state":"online"`)
	})
	if u.Stats().StatusFixes == 0 {
		t.Error("no status fix counted")
	}
}

// retained reads the retained message on topic with a fresh client.
func retained(t *testing.T, url, topic string) string {
	got := make(chan string, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("ret-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}).Wait()
	select {
	case s := <-got:
		return s
	case <-time.After(2 * time.Second):
		return ""
	}
}

// A password file is read one way wherever it is named: its first line.
// (Before: the uplink took the whole file, the config loader the first line.)
func TestPasswordFileFirstLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(path, []byte("s3cret\r\nnot part of it\n"), 0o600)
	c := Config{PasswordFile: path}
	if pw, err := c.password(); err != nil || pw != "s3cret" {
		t.Fatalf("password %q, %v", pw, err)
	}
	if pw, err := ReadPasswordFile(path); err != nil || pw != "s3cret" {
		t.Fatalf("ReadPasswordFile %q, %v", pw, err)
	}
	if pw, err := (Config{Password: "given"}).password(); err != nil || pw != "given" {
		t.Fatalf("password given: %q, %v", pw, err)
	}
}
