// Package uplink drains the store-and-forward buffer to the utility's MQTT
// broker: batched readings, events ahead of a backlog, a retained birth/will
// status, at least once with stable ids, and optional downlink commands.
// See README.md for the contract and the delivery argument.
package uplink

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"tidegate/reading"
	"tidegate/uplink/cmdauth"
)

// Queue is what the uplink needs of the buffer (*buffer.Buffer satisfies it).
type Queue interface {
	Read(after uint64, max int) ([]reading.Record, error)
	ReadUrgent(after uint64, max int) ([]reading.Record, error)
	Ack(seqs ...uint64) error
	AckUpTo(seq uint64) error
	Notify() <-chan struct{}
	// EnsureAbove makes every record held or stored from now on carry a
	// seq above floor (renumbering what is held); LastSeq is the highest
	// seq assigned. See lastseq.go.
	EnsureAbove(floor uint64) error
	LastSeq() uint64
	// SeqBase identifies the file: its seqs start above it.
	SeqBase() uint64
}

// Version is reported in the birth message when Config.Status gives none.
const Version = "tidegate-uplink/1"

// Uplink is one gateway's connection to the broker. Create it with New and
// call Run once.
type Uplink struct {
	cfg      Config
	q        Queue
	log      *logrus.Entry
	t        topics
	broker   *url.URL
	tlsConf  *tls.Config
	password string
	cmds     CommandHandler
	verifier *cmdauth.Verifier
	replay   ReplayWindow
	cq       commandQueues
	done     chan struct{} // closed when Run returns: command workers end

	// epoch changes whenever the connection is lost, re-attempted or made.
	// A publish whose epoch changed before its token completed is not
	// trusted, because paho v1.5.1 completes such tokens without error even
	// when no PUBACK came (upstream #563).
	ran       atomic.Bool
	epoch     atomic.Uint64
	connected atomic.Bool
	client    atomic.Pointer[paho.Client] // the connected (or last connected) client
	lost      chan struct{}               // a connection was lost (session.go)
	stopping  atomic.Bool                 // Run is publishing its own "offline": not a stale will to answer
	wake      chan struct{}
	alive     chan chan struct{} // liveness probes the sending loop answers (supervise.go)

	// published is how far the readings cursor has handed everything to
	// Publish, on this connection or an earlier one: every seq at or below
	// it went out (readings in their batches, events ahead of them). An
	// application ack beyond it is refused (ack.go).
	published atomic.Uint64

	// lastseq.go: bound is the last_seq the status and the will of the
	// current connection carry; nothing above it is published. floorKnown
	// is set once the gateway's own retained status was read (or found
	// absent) and the buffer numbers above it; retained hands a retained
	// status to the first connection's floor reader.
	bound      atomic.Uint64
	floorKnown atomic.Bool
	retained   chan []byte

	mu      sync.Mutex
	lastErr string
	stats   Stats
}

// Stats are the uplink's counters since New.
type Stats struct {
	Connected       bool
	Connects        uint64 // successful connections
	ConnectionLost  uint64
	Batches         uint64 // readings messages acknowledged by PUBACK
	Events          uint64 // event messages acknowledged by PUBACK
	Records         uint64 // records acknowledged by PUBACK
	Resent          uint64 // messages sent again for want of a trusted PUBACK
	BytesSent       uint64 // payload bytes of acknowledged messages
	AppAcks         uint64 // acks received on .../ack (application mode)
	SubscribeErrs   uint64 // subscriptions the broker refused or did not confirm
	StatusFixes     uint64 // a stale retained "offline" (a late Last Will) answered with "online"
	AppAcksRefused  uint64 // application acks beyond what the pump has published: nothing deleted
	ConnectAttempts uint64 // connections tried (successful or not)
	Probes          uint64 // TCP probes that found the broker's port open while waiting to connect
	// State is the sending loop's: "running", or "restarting" after an
	// error (RestartError, Restarts) until it runs again.
	State        string
	Restarts     uint64
	RestartError string
	LastSeq      uint64 // the last_seq the retained status carries
	// OversizePackets: incoming packets over max_packet (each closed the connection).
	OversizePackets uint64
	Inflight        int       // messages published and not yet settled
	LastPublish     time.Time // when the broker last acknowledged a message
	LastError       string
}

// New checks cfg and prepares an uplink draining q. It reads the password
// and TLS files now, so a bad path fails here and not at 3 a.m. log may be nil.
func New(cfg Config, q Queue, log *logrus.Entry) (*Uplink, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if q == nil {
		return nil, fmt.Errorf("%w: nil queue", ErrConfig)
	}
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		log = logrus.NewEntry(l)
	}
	u := &Uplink{cfg: cfg, q: q, t: newTopics(cfg.TopicPrefix, cfg.Gateway), wake: make(chan struct{}, 1), alive: make(chan chan struct{}), retained: make(chan []byte, 1), lost: make(chan struct{}, 1), done: make(chan struct{})}
	u.replay = &memReplay{}
	if rw, ok := q.(ReplayWindow); ok {
		u.replay = rw
	}
	u.log = log.WithFields(logrus.Fields{"component": "uplink", "gateway": cfg.Gateway})
	var useTLS bool
	u.broker, useTLS, _ = cfg.brokerURL()
	if useTLS {
		tc, err := cfg.tlsConfig(u.broker.Hostname())
		if err != nil {
			return nil, err
		}
		u.tlsConf = tc
	}
	pw, err := cfg.password()
	if err != nil {
		return nil, err
	}
	u.password = pw
	keys, err := cmdauth.LoadKeys(cfg.CommandKeys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	u.verifier = &cmdauth.Verifier{Audience: cfg.Gateway, Keys: keys, Policies: cfg.commandPolicies(), Default: cmdauth.Policy{Unsigned: true}}
	return u, nil
}

// Connected reports whether the MQTT connection is up now and ready to
// send (the gateway's last_seq read on the first one: lastseq.go).
func (u *Uplink) Connected() bool {
	return u.connected.Load() && u.floorKnown.Load()
}

// Stats returns a copy of the counters.
func (u *Uplink) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	s.Connected = u.Connected()
	s.LastError = u.lastErr
	return s
}

func (u *Uplink) setErr(err error) {
	u.mu.Lock()
	u.lastErr = err.Error()
	u.mu.Unlock()
}

func (u *Uplink) count(f func(s *Stats)) {
	u.mu.Lock()
	f(&u.stats)
	u.mu.Unlock()
}

func (u *Uplink) signal() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *Uplink) statusPayload(state string) []byte {
	w := wireStatus{Gateway: u.cfg.Gateway, State: state, Time: time.Now().UTC(), LastSeq: u.bound.Load(), SeqBase: u.q.SeqBase()}
	if state == "online" {
		if u.cfg.Status != nil {
			w.StatusInfo = u.cfg.Status()
		}
		if w.Version == "" {
			w.Version = Version
		}
		if w.ConfigHash == "" {
			w.ConfigHash = u.cfg.hash()
		}
	}
	b, _ := json.Marshal(w)
	return b
}

// options are a paho client's: for one connection (no reconnect, no retry:
// session.go makes the next client).
func (u *Uplink) options() *paho.ClientOptions {
	u.claim() // before the will is built: it carries the new bound
	o := paho.NewClientOptions().
		AddBroker(u.broker.String()).
		SetClientID(u.cfg.ClientID).
		SetCleanSession(true).    // bbolt is the durable queue, not paho's stores
		SetStore(discardStore{}). // paho must not resend on its own (#563); the pump resends from the buffer
		// In arrival order, so commands run in the order sent; every handler
		// returns at once (queues, goroutines), never blocking the client (#474, #509).
		SetOrderMatters(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(u.cfg.KeepAlive).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(10*time.Second).
		SetBinaryWill(u.t.status, u.statusPayload("offline"), 1, true)
	if u.tlsConf != nil {
		o.SetTLSConfig(u.tlsConf)
	}
	o.SetCustomOpenConnectionFn(u.dial)
	if u.cfg.Username != "" {
		o.SetUsername(u.cfg.Username)
	}
	if u.password != "" {
		o.SetPassword(u.password)
	}
	o.SetOnConnectHandler(func(c paho.Client) {
		u.client.Store(&c) // before the epoch moves: the pump takes the client when it sees a new epoch
		u.epoch.Add(1)
		u.connected.Store(true)
		u.count(func(s *Stats) { s.Connects++ })
		u.log.WithField("broker", u.broker.Host).Info("uplink connected")
		if !u.floorKnown.Load() {
			go u.learnFloor(c) // publishes online once the floor is known
			return
		}
		c.Publish(u.t.status, 1, true, u.statusPayload("online"))
		u.subscribe(c)
		u.signal()
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		u.epoch.Add(1)
		u.connected.Store(false)
		u.count(func(s *Stats) { s.ConnectionLost++ })
		if err != nil {
			u.setErr(err)
		}
		u.log.WithError(err).Warn("uplink connection lost")
		u.signal()
		u.signalLost()
	})
	var lastBrokerErr string // only touched by paho's connecting goroutine
	o.SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
		var err error
		switch n := n.(type) {
		case paho.ConnectionNotificationBrokerFailed:
			err = n.Reason
			if err != nil {
				lastBrokerErr = err.Error()
			}
		case paho.ConnectionNotificationFailed:
			// Usually repeats BrokerFailed's error with a prefix; a refusal
			// after the handshake (e.g. no client certificate) comes only here.
			err = n.Reason
			if err != nil && lastBrokerErr != "" && strings.HasSuffix(err.Error(), lastBrokerErr) {
				err = nil
			}
			lastBrokerErr = ""
		}
		if err != nil {
			u.setErr(err)
			u.log.WithError(err).WithField("broker", u.broker.Host).Warn("uplink connect failed")
		}
	})
	return o
}

// Run connects and drains the queue until ctx ends, then publishes the
// retained "offline" status and disconnects. Broker outages do not end Run;
// they only let the buffer grow, and a queue error only restarts the
// sending loop (supervise.go). It returns ctx's error when ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	if u.ran.Swap(true) {
		return ErrRunTwice
	}
	err := u.runSessions(ctx)
	u.stopping.Store(true)
	close(u.done)
	c := u.currentClient()
	if c == nil {
		u.connected.Store(false)
		return err
	}
	if c.IsConnectionOpen() {
		tok := c.Publish(u.t.status, 1, true, u.statusPayload("offline"))
		tok.WaitTimeout(2 * time.Second)
	}
	c.Disconnect(250)
	u.connected.Store(false)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		u.log.WithError(err).Error("uplink stopped")
	}
	return err
}
