package uplink

import (
	"fmt"

	paho "github.com/eclipse/paho.mqtt.golang"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestWithheldPubackAcrossReconnect is the paho #563 test. A proxy between
// the client and the broker swallows every PUBACK, cuts the connection when
// it swallows the third, and keeps swallowing after the reconnect. The
// sequence is fixed by packets, not by waits: the cut comes at an exact
// PUBACK.
//
// "paho alone" is a plain paho client as the uplink would use it without
// its protection (memory store, its own reconnect): paho v1.5.1 resends
// the in-flight publishes from its store on reconnect and, claiming each
// message id for the resend, completes the original tokens with err ==
// nil although no PUBACK ever reached the client. So the scenario really
// triggers #563. "uplink" is the real uplink through the same proxy: the
// buffer must not be acknowledged until PUBACKs pass again, and everything
// then arrives, in buffer order. (The protection used to be proved by
// switches in the Uplink type that took it apart; they are gone: the bug
// is shown on paho itself.)
func TestWithheldPubackAcrossReconnect(t *testing.T) {
	t.Run("paho alone", func(t *testing.T) {
		br := startMochi(t)
		px := startCutProxy(t, br.Addr())
		px.swallow.Store(true)
		px.cutAt.Store(3)
		o := paho.NewClientOptions().AddBroker(px.URL()).SetClientID("naive").SetCleanSession(true).
			SetStore(paho.NewMemoryStore()).SetOrderMatters(false).SetAutoReconnect(true).SetConnectRetry(true).
			SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		defer c.Disconnect(50)
		var toks []paho.Token
		for i := range 8 {
			toks = append(toks, c.Publish("test/naive", 1, false, fmt.Sprint(i)))
		}
		waitFor(t, 20*time.Second, "the cut at the third swallowed PUBACK", func() bool { c := px.conn(0); return c != nil && c.cutByProxy.Load() })
		sent := px.conn(0).published.Load()
		waitFor(t, 20*time.Second, "paho's resend of the in-flight publishes", func() bool {
			s := px.conn(1)
			return s != nil && s.resent.Load() >= sent
		})
		done := 0
		for _, tok := range toks {
			if isDone(tok) && tok.Error() == nil {
				done++
			}
		}
		if done == 0 {
			t.Fatalf("no token completed without error: paho #563 did not trigger (%s)", px)
		}
		t.Logf("paho completed %d of %d publish tokens without error and without any PUBACK (#563); %d publishes before the cut", done, len(toks), sent)
	})
	t.Run("uplink", func(t *testing.T) {
		br := startMochi(t)
		px := startCutProxy(t, br.Addr())
		q := openBuffer(t)
		last := fill(t, q, 1000, 5)
		sub := subscribe(t, br.URL(), "test")
		px.swallow.Store(true)
		px.connackDelay.Store(int64(300 * time.Millisecond)) // the pump's first window is ready before the connection is
		px.cutAt.Store(3)                                    // the birth message's and two batches' PUBACKs, or three batches'
		cfg := testConfig(px.URL())
		cfg.AckTimeout = 10 * time.Minute // only a reconnect may end the wait here, never a resend after ack_timeout
		log, _ := quietLog(t)
		u, err := New(cfg, q, log)
		if err != nil {
			t.Fatal(err)
		}
		startUplink(t, u)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("proxy: %s; stats %+v; arrivals %s", px, u.Stats(), arrivalRuns(sub))
			}
		})
		waitFor(t, 20*time.Second, "the cut at the third swallowed PUBACK", func() bool { c := px.conn(0); return c != nil && c.cutByProxy.Load() })
		waitFor(t, 10*time.Second, "two batches at the subscriber", func() bool { got, _ := sub.unique(); return len(got) >= 200 })
		if c := q.Cursor(); c != 0 {
			t.Fatalf("buffer acknowledged up to %d before any PUBACK", c)
		}
		waitFor(t, 20*time.Second, "reconnect", func() bool { return u.Stats().Connects >= 2 && px.conn(1) != nil })
		second := px.conn(1)
		// The pump has given up its first window (a reset counts the
		// window as resent) and published again on the new connection,
		// whose PUBACKs are swallowed too.
		window := int64(cfg.withDefaults().MaxInflight)
		waitFor(t, 20*time.Second, "the window given up and sent again", func() bool {
			return u.Stats().Resent > 0 && second.published.Load()-second.resent.Load() >= window
		})
		if c := q.Cursor(); c != 0 || u.Stats().Records != 0 {
			t.Fatalf("buffer acknowledged up to %d (stats %+v) although no PUBACK reached the client", c, u.Stats())
		}

		// Let PUBACKs through: everything drains, each id once after dedup.
		// The swallowed PUBACKs are gone for good; a broker restart (here a
		// second cut) makes the uplink send everything unacknowledged again.
		px.swallow.Store(false)
		px.CutAll()
		waitFor(t, 30*time.Second, "buffer drained", func() bool { return q.Cursor() == last })
		waitFor(t, 5*time.Second, "all at the subscriber", func() bool { got, _ := sub.unique(); return uint64(len(got)) == last })
		got, dups := sub.unique()
		t.Logf("%d readings, %d duplicates dropped by id, %d messages resent", last, dups, u.Stats().Resent)
		if dups == 0 {
			t.Errorf("expected duplicates of the withheld window")
		}
		inOrder := slices.IsSorted(got)
		slices.Sort(got)
		checkAll(t, got, last)
		if !inOrder {
			// A Publish still queued inside paho when the connection was
			// cut must not go out first on the next connection, ahead of
			// the window the pump sends again (a later batch before an
			// earlier one): the uplink makes a fresh client per connection.
			t.Errorf("first arrivals out of buffer order after a reconnect: %s", arrivalRuns(sub))
		}
	})
}

// arrivalRuns is the subscriber's reading seqs in arrival order as runs,
// e.g. "1-400 601-800 1-1000".
func arrivalRuns(sub *collector) string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var runs []string
	for i, id := range sub.ids {
		if i == 0 || id != sub.ids[i-1]+1 {
			runs = append(runs, fmt.Sprint(id))
		} else if i == len(sub.ids)-1 || sub.ids[i+1] != id+1 {
			runs[len(runs)-1] += fmt.Sprintf("-%d", id)
		}
	}
	return strings.Join(runs, " ")
}

// TestAckTimeoutResends: PUBACKs lost without any reconnect (a broker that
// drops them) are made up for by sending again after ack_timeout on the
// same connection; the buffer is acknowledged only by the new PUBACKs.
func TestAckTimeoutResends(t *testing.T) {
	br := startMochi(t)
	px := startProxy(t, br.Addr())
	q := openBuffer(t)
	last := fill(t, q, 600, 3)
	sub := subscribe(t, br.URL(), "test")
	px.SwallowPubacks(true)
	cfg := testConfig(px.URL())
	cfg.AckTimeout = 700 * time.Millisecond
	u, _ := New(cfg, q, quietLogEntry(t))
	startUplink(t, u)
	waitFor(t, 5*time.Second, "window sent", func() bool { return px.Swallowed() >= 4 })
	if q.Cursor() != 0 {
		t.Fatal("acknowledged without PUBACK")
	}
	px.SwallowPubacks(false)
	waitFor(t, 10*time.Second, "drained", func() bool { return q.Cursor() == last })
	s := u.Stats()
	if s.Connects != 1 || s.Resent == 0 {
		t.Fatalf("want resends on the one connection, stats %+v", s)
	}
	waitFor(t, 5*time.Second, "all at the subscriber", func() bool { got, _ := sub.unique(); return uint64(len(got)) == last })
	got, _ := sub.unique()
	checkAll(t, got, last)
}
