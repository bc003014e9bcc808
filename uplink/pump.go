package uplink

import (
	"context"
	"fmt"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"tidegate/reading"
)

// message is one published MQTT message and the records it carries.
type message struct {
	topic   string
	payload []byte
	seqs    []uint64
	event   bool
	epoch   uint64 // connection epoch read before Publish
	tok     paho.Token
	sent    time.Time
}

// cursors say how far the queue has been read into messages in flight.
// Resetting them to zero re-reads everything not yet acknowledged: acked
// records are gone from the buffer, so nothing acknowledged is sent again.
type cursors struct {
	after, afterUrgent uint64
	pendingSince       time.Time // first sight of a partial readings batch
}

// pump is the single sender: it keeps up to MaxInflight messages in flight,
// settles them strictly in publish order (so acks and resends keep the
// gateway's order), and on any doubt about a PUBACK sends everything
// unacknowledged again from the buffer.
//
// client gives the connection to publish on: the protected uplink makes a
// fresh paho client for every connection (session.go), so a Publish still
// queued inside the client of a lost connection can never go out on the
// next one ahead of the window sent again.
func (u *Uplink) pump(ctx context.Context, client func() paho.Client) error {
	var (
		cur      cursors
		window   []*message
		epoch    uint64
		notify   = u.q.Notify()
		failures int
		c        = client()
		hold     bool // nothing is published until the next connection (lastseq.go)
	)
	acks := newAcker(u.q)
	defer acks.close()
	reset := func() {
		if n := len(window); n > 0 {
			u.count(func(s *Stats) { s.Resent += uint64(n) })
		}
		window, cur = nil, cursors{}
		u.setInflight(0)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := acks.err(); err != nil {
			return err
		}
		if !u.connected.Load() || !u.floorKnown.Load() {
			reset()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-u.wake:
			case ch := <-u.alive:
				close(ch)
			}
			continue
		}
		if e := u.epoch.Load(); e != epoch {
			reset()
			epoch, hold = e, false
			c = client() // stored before the epoch moved: this connection's or a newer one's
		}

		var wakeAt time.Time
		for c != nil && !hold && len(window) < u.cfg.MaxInflight {
			m, at, err := u.next(&cur)
			if err != nil {
				return err
			}
			if m == nil {
				u.markPublished(cur.after)
				wakeAt = at
				break
			}
			if top := slices.Max(m.seqs); top > u.bound.Load() {
				// Past the last_seq this connection's will carries: a new
				// connection claims more (lastseq.go); this message goes on it.
				u.log.WithFields(logrus.Fields{"seq": top, "last_seq": u.bound.Load()}).Info("uplink: reconnecting to claim seqs beyond the status's last_seq")
				u.signalLost()
				reset()
				hold = true
				break
			}
			m.epoch = u.epoch.Load()
			m.sent = time.Now()
			m.tok = c.Publish(m.topic, 1, false, m.payload)
			window = append(window, m)
			u.markPublished(cur.after)
		}
		u.setInflight(len(window))

		failed, settled := false, false
		for len(window) > 0 {
			m := window[0]
			select {
			case <-m.tok.Done():
			default:
				if time.Since(m.sent) > u.cfg.AckTimeout {
					u.log.WithField("seq", m.seqs[0]).WithField("timeout", u.cfg.AckTimeout).Warn("uplink: no PUBACK in time, sending again")
					failed = true
				}
			}
			if failed {
				break
			}
			if !isDone(m.tok) {
				break
			}
			if err := m.tok.Error(); err != nil || u.epoch.Load() != m.epoch {
				// Not proof of delivery: an error, or the connection changed
				// under the publish (paho #563 completes it with nil then).
				if err == nil {
					err = ErrNotDelivered
				}
				u.log.WithError(err).WithField("seq", m.seqs[0]).Info("uplink: resending unacknowledged messages")
				failed = true
				break
			}
			u.settle(m, acks)
			window = window[1:]
			failures = 0
			settled = true
		}
		u.setInflight(len(window))
		if failed {
			reset()
			failures++
			// Errors on a connection that looks up should not spin.
			if err := sleepCtx(ctx, min(time.Duration(failures)*100*time.Millisecond, 2*time.Second)); err != nil {
				return err
			}
			continue
		}
		if settled {
			continue // room in the window: refill before waiting
		}

		// Wait for whatever can change the picture.
		var head <-chan struct{}
		if len(window) > 0 {
			head = window[0].tok.Done()
			if at := window[0].sent.Add(u.cfg.AckTimeout); wakeAt.IsZero() || at.Before(wakeAt) {
				wakeAt = at
			}
		}
		var timer <-chan time.Time
		var t *time.Timer
		if !wakeAt.IsZero() {
			t = time.NewTimer(time.Until(wakeAt))
			timer = t.C
		}
		var more <-chan struct{}
		if len(window) < u.cfg.MaxInflight {
			more = notify
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-head:
		case <-timer:
		case <-more:
		case <-u.wake:
		case <-acks.failed:
		case ch := <-u.alive:
			close(ch)
		}
		if t != nil {
			t.Stop()
		}
	}
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// markPublished moves the published bound (Uplink.published) up to seq.
func (u *Uplink) markPublished(seq uint64) {
	for {
		p := u.published.Load()
		if seq <= p || u.published.CompareAndSwap(p, seq) {
			return
		}
	}
}

func (u *Uplink) setInflight(n int) { u.count(func(s *Stats) { s.Inflight = n }) }

// settle records a trusted PUBACK: in puback mode the buffer forgets the
// records (asynchronously, so the fsync overlaps the next batch); in
// application mode it waits for the service's ack.
func (u *Uplink) settle(m *message, acks *acker) {
	if u.cfg.Ack == AckPuback {
		acks.ack(m.seqs)
	}
	u.count(func(s *Stats) {
		if m.event {
			s.Events++
		} else {
			s.Batches++
		}
		s.Records += uint64(len(m.seqs))
		s.BytesSent += uint64(len(m.payload))
		s.LastPublish = time.Now()
	})
}

// next builds the next message: an event if one is waiting, else a readings
// batch. It returns nil and a time to look again when a partial batch is
// waiting for max_latency, or nil and zero time when nothing is waiting.
func (u *Uplink) next(cur *cursors) (*message, time.Time, error) {
	now := time.Now()
	evs, err := u.q.ReadUrgent(cur.afterUrgent, 1)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("uplink: read events: %w", err)
	}
	if len(evs) > 0 {
		cur.afterUrgent = evs[0].Seq
		return u.eventMessage(evs[0], now)
	}

	max := u.cfg.Batch.MaxCount
	recs, err := u.q.Read(cur.after, max)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("uplink: read: %w", err)
	}
	full := len(recs) >= max
	payload := batchHead(u.cfg.Gateway)
	var seqs []uint64
	last := cur.after
	for _, r := range recs {
		if r.Kind == reading.KindEvent {
			urgent, err := u.urgentIndexed(r.Seq, cur.afterUrgent)
			if err != nil {
				return nil, time.Time{}, err
			}
			if !urgent && len(seqs) == 0 {
				// Not in the event index: the buffer's report of a record it
				// could not decode. It goes out as an event from here, or
				// it would never be acknowledged.
				cur.after = r.Seq
				return u.eventMessage(r, now)
			}
			if !urgent {
				full = true // send the batch so far; the event comes next
				break
			}
			if r.Seq > cur.afterUrgent {
				// Appended after this call's ReadUrgent: the urgent path has
				// not sent it yet, and the readings cursor must not pass an
				// unsent record (it bounds application acks).
				if len(seqs) > 0 {
					full = true
					break
				}
				cur.afterUrgent, cur.after = r.Seq, r.Seq
				return u.eventMessage(r, now)
			}
			last = r.Seq // events travel on their own topic via ReadUrgent
			continue
		}
		p, err := encodeRecord(u.cfg.Gateway, r, now, u.cfg.HistoricalAfter)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("uplink: encode record %d: %w", r.Seq, err)
		}
		if len(seqs) > 0 && len(payload)+1+len(p)+len(batchTail) > u.cfg.Batch.MaxBytes {
			full = true
			break
		}
		if len(seqs) > 0 {
			payload = append(payload, ',')
		}
		payload = append(payload, p...)
		seqs = append(seqs, r.Seq)
		last = r.Seq
	}
	if len(seqs) == 0 {
		cur.after = last // skip past events only
		cur.pendingSince = time.Time{}
		return nil, time.Time{}, nil
	}
	if !full {
		if cur.pendingSince.IsZero() {
			cur.pendingSince = now
		}
		if at := cur.pendingSince.Add(u.cfg.Batch.MaxLatency); now.Before(at) {
			return nil, at, nil
		}
	}
	cur.pendingSince = time.Time{}
	cur.after = last
	payload = append(payload, batchTail...)
	return &message{topic: u.t.readings, payload: payload, seqs: seqs}, time.Time{}, nil
}

func (u *Uplink) eventMessage(r reading.Record, now time.Time) (*message, time.Time, error) {
	p, err := encodeEvent(u.cfg.Gateway, r, now, u.cfg.HistoricalAfter)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("uplink: encode event %d: %w", r.Seq, err)
	}
	return &message{topic: u.t.events, payload: p, seqs: []uint64{r.Seq}, event: true}, time.Time{}, nil
}

// urgentIndexed says whether the event at seq is one ReadUrgent hands out
// (and so is sent by the urgent path). One indexed lookup unless the urgent
// path has already passed it.
func (u *Uplink) urgentIndexed(seq, afterUrgent uint64) (bool, error) {
	if seq <= afterUrgent {
		return true, nil
	}
	evs, err := u.q.ReadUrgent(seq-1, 1)
	if err != nil {
		return false, fmt.Errorf("uplink: read events: %w", err)
	}
	return len(evs) == 1 && evs[0].Seq == seq, nil
}
