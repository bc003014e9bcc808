package uplink

import (
	"os"
	"testing"
	"time"
)

// TestWithheldPubackAcrossReconnect is the paho #563 test. A proxy between
// the uplink and the broker swallows every PUBACK, then cuts the connection
// and keeps swallowing after paho has reconnected. paho v1.5.1 resends the
// in-flight publishes on reconnect and completes their original tokens with
// err == nil although no PUBACK ever reached the client.
//
// "protected" is the real uplink: the buffer must not be acknowledged until
// PUBACKs pass again. "epoch check only" keeps paho's memory store and the
// window across reconnects, so paho's resend and its nil tokens happen and
// only the reconnect-count check stands between them and the buffer.
// "unprotected" also trusts the tokens and asserts that records ARE then
// acknowledged without any PUBACK: the scenario really triggers #563, so the
// protected assertions fail if the protection is removed.
func TestWithheldPubackAcrossReconnect(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		naiveClient, trustTokens bool
	}{{"protected", false, false}, {"epoch check only", true, false}, {"unprotected", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.naiveClient && !tc.trustTokens && os.Getenv("TIDEGATE_LONG") != "1" {
				// Not reliable (about 1 run in 12 under -race, more under load):
				// with paho's memory store, paho holds part of the window back,
				// and after the cut a whole batch may never reach the
				// subscriber although the epoch check let the buffer go on
				// (seen: "reading 200 has seq 401"). The epoch check alone is
				// not the protection tidegate relies on: it keeps no paho
				// store (the protected case); this one runs with TIDEGATE_LONG=1.
				t.Skip("epoch-check-only variant runs with TIDEGATE_LONG=1 (known flake, see comment)")
			}
			br := startMochi(t)
			px := startProxy(t, br.Addr())
			q := openBuffer(t)
			last := fill(t, q, 1000, 5)
			sub := subscribe(t, br.URL(), "test")
			px.SwallowPubacks(true)
			cfg := testConfig(px.URL())
			cfg.AckTimeout = time.Minute // only a reconnect may end the wait here
			log, _ := quietLog(t)
			u, err := New(cfg, q, log)
			if err != nil {
				t.Fatal(err)
			}
			u.naiveClient, u.trustTokens = tc.naiveClient, tc.trustTokens
			startUplink(t, u)

			// The broker has the first window (and the retained status). With
			// paho's own store (the naive client) paho may hold some of the
			// window back under load (seen on CI: 3 of 5): a few swallowed
			// PUBACKs are enough to reproduce #563.
			want := int64(cfg.withDefaults().MaxInflight) + 1
			if tc.naiveClient {
				want = 2
			}
			waitFor(t, 10*time.Second, "PUBACKs swallowed", func() bool { return px.Swallowed() >= want })
			waitFor(t, 5*time.Second, "first window at the subscriber", func() bool { got, _ := sub.unique(); return len(got) >= 200 })
			if c := q.Cursor(); c != 0 {
				t.Fatalf("buffer acknowledged up to %d before any PUBACK", c)
			}
			before := px.Swallowed()
			px.CutAll()
			waitFor(t, 10*time.Second, "reconnect", func() bool { return u.Stats().Connects >= 2 })
			// paho has resent its in-flight publishes: their PUBACKs are swallowed too.
			waitFor(t, 10*time.Second, "resent PUBACKs swallowed", func() bool { return px.Swallowed() > before+2 })
			time.Sleep(300 * time.Millisecond)
			c := q.Cursor()
			if tc.trustTokens {
				if c == 0 {
					t.Fatalf("without the protection nothing was acknowledged: the test no longer reproduces paho #563, so the protected case proves nothing")
				}
				t.Logf("without the protection the buffer acknowledged up to seq %d with no PUBACK received (paho #563)", c)
				return
			}
			if c != 0 || u.Stats().Records != 0 {
				t.Fatalf("buffer acknowledged up to %d (stats %+v) although no PUBACK reached the client", c, u.Stats())
			}

			// Let PUBACKs through: everything drains, each id once after dedup.
			// The swallowed PUBACKs are gone for good; a broker restart (here a
			// second cut) makes the uplink send everything unacknowledged again.
			px.SwallowPubacks(false)
			px.CutAll()
			waitFor(t, 30*time.Second, "buffer drained", func() bool { return q.Cursor() == last })
			waitFor(t, 5*time.Second, "all at the subscriber", func() bool { got, _ := sub.unique(); return uint64(len(got)) == last })
			got, dups := sub.unique()
			checkAll(t, got, last)
			t.Logf("%d readings, %d duplicates dropped by id, %d messages resent", last, dups, u.Stats().Resent)
			if dups == 0 {
				t.Errorf("expected duplicates of the withheld window")
			}
		})
	}
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
