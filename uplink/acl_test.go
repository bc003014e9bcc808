package uplink

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// aclFromSecurityMD is the acl_file example in SECURITY.md, as written there.
func aclFromSecurityMD(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- acl_file: begin -->\\s*```text\\n(.*?)```\\s*<!-- acl_file: end -->").FindSubmatch(b)
	if m == nil {
		t.Fatal("SECURITY.md has no acl_file block between its markers")
	}
	return string(m[1])
}

// TestMosquittoACLExample runs SECURITY.md's acl_file against a real
// mosquitto: the gateway gw-1 runs (subscriptions granted, readings and
// command results reach the service), and its credentials can neither
// publish under another gateway's prefix or on its own command topic, nor
// read another gateway's commands.
func TestMosquittoACLExample(t *testing.T) {
	bin := needMosquitto(t)
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	m := &mosquitto{t: t, dir: t.TempDir(), port: freePort(t)}
	pw := filepath.Join(m.dir, "passwd")
	for i, u := range []string{"central", "gw-1", "gw-2"} {
		args := []string{"-b", pw, u, u + "-pw"}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
	}
	acl := filepath.Join(m.dir, "tidegate.acl")
	if err := os.WriteFile(acl, []byte(aclFromSecurityMD(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\npersistence false\nlog_dest stderr\nlog_type error\n", m.port, pw, acl)
	if os.Geteuid() == 0 {
		conf = "user root\n" + conf
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = bin
	m.start()
	t.Cleanup(m.kill)

	type seen struct {
		mu     sync.Mutex
		topics map[string]int
	}
	got := &seen{topics: map[string]int{}}
	client := func(user string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(m.url("tcp")).SetClientID(user + "-test").
			SetUsername(user).SetPassword(user + "-pw"))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s connect: %v", user, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c
	}
	central := client("central")
	if err := subackError(central.Subscribe("tidegate/v1/#", 1, func(_ paho.Client, msg paho.Message) {
		got.mu.Lock()
		got.topics[msg.Topic()]++
		got.mu.Unlock()
	}), 5*time.Second); err != nil {
		t.Fatalf("central subscribe: %v", err)
	}
	count := func(topic string) int { got.mu.Lock(); defer got.mu.Unlock(); return got.topics[topic] }

	// The gateway itself, with the ACL's pattern for its own topics.
	q := openBuffer(t)
	cfg := Config{Broker: m.url("tcp"), Gateway: "gw-1", Username: "gw-1", Password: "gw-1-pw", Commands: true,
		Batch: BatchConfig{MaxLatency: 50 * time.Millisecond}, ReconnectMax: time.Second, ReconnectJitter: -1, AckTimeout: 5 * time.Second}
	u, err := New(cfg, q, quietLogEntry(t))
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)
	fill(t, q, 10, 1)
	waitFor(t, 5*time.Second, "gw-1's readings at the service", func() bool { return count("tidegate/v1/gw-1/readings") > 0 })
	waitFor(t, 5*time.Second, "gw-1's command result", func() bool {
		central.Publish("tidegate/v1/gw-1/cmd/ping", 1, false, `{"id":"p1"}`).Wait()
		time.Sleep(50 * time.Millisecond)
		return count("tidegate/v1/gw-1/cmd/p1/result") > 0
	})
	if s := u.Stats(); s.SubscribeErrs != 0 {
		t.Fatalf("the gateway's own subscriptions were refused: %+v", s)
	}

	// The gateway's credentials, used by someone else.
	gw := client("gw-1")
	for _, topic := range []string{"tidegate/v1/gw-2/readings", "tidegate/v1/gw-2/status", "tidegate/v1/gw-1/cmd/valve", "tidegate/v1/gw-1/ack", "elsewhere/x"} {
		gw.Publish(topic, 1, false, "forged").WaitTimeout(5 * time.Second)
	}
	// Reading beyond its own topics: mosquitto 2.0 grants the SUBACK
	// (MQTT 3.1.1) and checks the ACL when delivering, so what counts is
	// that nothing arrives.
	var gwMu sync.Mutex
	gwGot := map[string]int{}
	for _, topic := range []string{"tidegate/v1/gw-2/cmd/+", "tidegate/v1/+/ack", "tidegate/v1/gw-1/cmd/+"} {
		if tok := gw.Subscribe(topic, 1, func(_ paho.Client, msg paho.Message) {
			gwMu.Lock()
			gwGot[msg.Topic()]++
			gwMu.Unlock()
		}); !tok.WaitTimeout(5 * time.Second) {
			t.Fatal("no SUBACK")
		}
	}
	central.Publish("tidegate/v1/gw-2/cmd/valve", 1, false, "for gw-2").Wait()
	central.Publish("tidegate/v1/gw-2/ack", 1, false, `{"seq":1}`).Wait()
	central.Publish("tidegate/v1/gw-1/cmd/marker", 1, false, `{"id":"m"}`).Wait()
	waitFor(t, 5*time.Second, "gw-1 reads its own command topic", func() bool {
		gwMu.Lock()
		defer gwMu.Unlock()
		return gwGot["tidegate/v1/gw-1/cmd/marker"] > 0
	})
	gwMu.Lock()
	if gwGot["tidegate/v1/gw-2/cmd/valve"]+gwGot["tidegate/v1/gw-2/ack"] != 0 {
		t.Errorf("gw-1's credentials read another gateway's topics: %v", gwGot)
	}
	gwMu.Unlock()
	// A marker published after the forgeries: once the service has it,
	// anything forged would have arrived too.
	gw.Publish("tidegate/v1/gw-1/events", 1, false, "marker").Wait()
	waitFor(t, 5*time.Second, "the marker", func() bool { return count("tidegate/v1/gw-1/events") > 0 })
	for _, topic := range []string{"tidegate/v1/gw-2/readings", "tidegate/v1/gw-2/status", "tidegate/v1/gw-1/cmd/valve", "tidegate/v1/gw-1/ack"} {
		if n := count(topic); n != 0 {
			t.Errorf("gw-1's credentials published on %s (%d)", topic, n)
		}
	}
}
