// Command tidegate-receiver is the reference receiver of tidegate's
// upstream contract (uplink/README.md, docs/upstream/): a utility's
// developers start from it. It subscribes to one gateway or all, stores
// each record once (deduplicating on id: delivery is at least once),
// prints records, events, health and status as JSON lines, reports gaps
// in a gateway's sequence and the records the gateway evicted, and in
// application-ack mode acks what it has stored. `tidegate-receiver
// command` sends one downlink command and prints its result.
//
//	tidegate-receiver --broker tcp://127.0.0.1:1883 --prefix tidegate --gateway + --ack
//	tidegate-receiver command --broker ... --gateway gw-1 '{"id":"c1","command":"config_get"}'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	broker, prefix, gateway, user, passwordFile, clientID string
	ack                                                   bool
	gapAfter, timeout                                     time.Duration
}

func flags(name string, args []string, stderr io.Writer) (*options, []string, error) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.broker, "broker", "tcp://127.0.0.1:1883", "broker URL")
	fs.StringVar(&o.prefix, "prefix", "tidegate", "the gateways' mqtt.topic_prefix")
	fs.StringVar(&o.gateway, "gateway", "+", "gateway id, or + for all")
	fs.StringVar(&o.user, "username", "", "MQTT user name")
	fs.StringVar(&o.passwordFile, "password-file", "", "file holding the MQTT password")
	fs.StringVar(&o.clientID, "client-id", "", "MQTT client id (default: random)")
	fs.BoolVar(&o.ack, "ack", false, "send application acks (gateways with mqtt.ack: application)")
	fs.DurationVar(&o.gapAfter, "gap-after", 30*time.Second, "report a hole in a gateway's sequence as a gap after this long")
	fs.DurationVar(&o.timeout, "timeout", 40*time.Second, "command: how long to wait for the result")
	err := fs.Parse(args)
	return o, fs.Args(), err
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "command" {
		return runCommand(ctx, args[1:], stdout, stderr)
	}
	o, _, err := flags("tidegate-receiver", args, stderr)
	if err != nil {
		return 2
	}
	r := &receiver{o: o, out: json.NewEncoder(stdout), gws: map[string]*tracker{}}
	c, err := connect(o)
	if err != nil {
		fmt.Fprintln(stderr, "tidegate-receiver:", err)
		return 1
	}
	defer c.Disconnect(250)
	r.c = c
	base := o.prefix + "/v1/" + o.gateway + "/"
	for _, s := range []struct {
		topic string
		h     func(gw string, p []byte)
	}{{"status", r.onStatus}, {"readings", r.onReadings}, {"events", r.onEvents}, {"health", r.onHealth}} {
		h := s.h
		tok := c.Subscribe(base+s.topic, 1, func(_ paho.Client, m paho.Message) { h(gatewayOf(o.prefix, m.Topic()), m.Payload()) })
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			fmt.Fprintln(stderr, "tidegate-receiver: subscribe:", tok.Error())
			return 1
		}
	}
	r.emit(map[string]any{"type": "subscribed", "topics": base + "{status,readings,events,health}"})
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
			r.checkGaps()
		}
	}
}

func connect(o *options) (paho.Client, error) {
	id := o.clientID
	if id == "" {
		id = fmt.Sprintf("tidegate-receiver-%d", time.Now().UnixNano()%1e9)
	}
	opts := paho.NewClientOptions().AddBroker(o.broker).SetClientID(id).SetCleanSession(true).
		SetOrderMatters(false).SetAutoReconnect(true).SetConnectRetry(true)
	if o.user != "" {
		opts.SetUsername(o.user)
	}
	if o.passwordFile != "" {
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return nil, err
		}
		opts.SetPassword(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		return nil, errors.New("no connection to the broker within 30s")
	}
	return c, tok.Error()
}

// gatewayOf is the gateway id in <prefix>/v1/<gateway>/...
func gatewayOf(prefix, topic string) string {
	rest := strings.TrimPrefix(topic, prefix+"/v1/")
	gw, _, _ := strings.Cut(rest, "/")
	return gw
}

type receiver struct {
	o   *options
	c   paho.Client
	mu  sync.Mutex // one message at a time, and one line at a time
	out *json.Encoder
	gws map[string]*tracker
}

func (r *receiver) emit(v any) { _ = r.out.Encode(v) }

func (r *receiver) tracker(gw string) *tracker {
	t := r.gws[gw]
	if t == nil {
		t = newTracker(gw)
		r.gws[gw] = t
	}
	return t
}

type record struct {
	ID    string            `json:"id"`
	Seq   uint64            `json:"seq"`
	Kind  string            `json:"kind"`
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs"`
}

func (r *receiver) onStatus(gw string, p []byte) {
	var s struct {
		State   string `json:"state"`
		SeqBase uint64 `json:"seq_base"`
	}
	if json.Unmarshal(p, &s) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.SeqBase > 0 {
		r.tracker(gw).start(s.SeqBase)
	}
	r.emit(map[string]any{"type": "status", "gateway": gw, "status": json.RawMessage(p)})
}

func (r *receiver) onHealth(gw string, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emit(map[string]any{"type": "health", "gateway": gw, "health": json.RawMessage(p)})
}

func (r *receiver) onReadings(gw string, p []byte) {
	var doc struct {
		Batch []json.RawMessage `json:"batch"`
	}
	if err := json.Unmarshal(p, &doc); err != nil {
		r.mu.Lock()
		r.emit(map[string]any{"type": "malformed", "gateway": gw, "error": err.Error()})
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, raw := range doc.Batch {
		r.store(gw, raw)
	}
	r.ack(gw)
}

func (r *receiver) onEvents(gw string, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.store(gw, p)
	r.ack(gw)
}

// store is where a service would write the record to its database; here
// it prints it, once.
func (r *receiver) store(gw string, raw json.RawMessage) {
	var rec record
	if json.Unmarshal(raw, &rec) != nil || rec.Seq == 0 {
		r.emit(map[string]any{"type": "malformed", "gateway": gw, "record": raw})
		return
	}
	t := r.tracker(gw)
	if !t.record(rec.Seq, time.Now()) {
		return // a duplicate: at least once means it may come again
	}
	r.emit(map[string]any{"type": "record", "gateway": gw, "record": raw})
	if rec.Type == "buffer_evicted" {
		n := t.evict(rec.Attrs["ranges"], time.Now())
		r.emit(map[string]any{"type": "eviction", "gateway": gw, "ranges": rec.Attrs["ranges"], "count": n, "reason": rec.Attrs["reason"]})
	}
}

// ack confirms everything up to the highest seq with nothing missing
// before it (only in application mode).
func (r *receiver) ack(gw string) {
	if !r.o.ack {
		return
	}
	if s := r.gws[gw].acked(); s > 0 {
		p, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("%s:%d", gw, s)})
		r.c.Publish(r.o.prefix+"/v1/"+gw+"/ack", 1, false, p)
	}
}

func (r *receiver) checkGaps() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for gw, t := range r.gws {
		gs := t.gaps(time.Now(), r.o.gapAfter)
		for _, g := range gs {
			r.emit(map[string]any{"type": "gap", "gateway": gw, "from": g.From, "to": g.To})
		}
		if len(gs) > 0 {
			r.ack(gw)
		}
	}
}

// runCommand sends one command to one gateway and prints its result.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, rest, err := flags("tidegate-receiver command", args, stderr)
	if err != nil {
		return 2
	}
	if len(rest) != 1 || o.gateway == "+" {
		fmt.Fprintln(stderr, `usage: tidegate-receiver command --gateway ID [flags] '{"id":"c1","command":"config_get"}'`)
		return 2
	}
	var req struct {
		ID      string `json:"id"`
		Command string `json:"command"`
	}
	if err := json.Unmarshal([]byte(rest[0]), &req); err != nil || req.ID == "" || req.Command == "" {
		fmt.Fprintln(stderr, "tidegate-receiver command: the command must be JSON with id and command")
		return 2
	}
	c, err := connect(o)
	if err != nil {
		fmt.Fprintln(stderr, "tidegate-receiver:", err)
		return 1
	}
	defer c.Disconnect(250)
	base := o.prefix + "/v1/" + o.gateway + "/cmd/"
	res := make(chan []byte, 1)
	tok := c.Subscribe(base+req.ID+"/result", 1, func(_ paho.Client, m paho.Message) {
		select {
		case res <- m.Payload():
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		fmt.Fprintln(stderr, "tidegate-receiver: subscribe:", tok.Error())
		return 1
	}
	c.Publish(base+req.Command, 1, false, rest[0]).WaitTimeout(10 * time.Second)
	select {
	case p := <-res:
		fmt.Fprintln(stdout, string(p))
		var ok struct{ OK bool }
		if json.Unmarshal(p, &ok) == nil && ok.OK {
			return 0
		}
		return 1
	case <-time.After(o.timeout):
		fmt.Fprintln(stderr, "tidegate-receiver: no result within", o.timeout)
		return 1
	case <-ctx.Done():
		return 1
	}
}
