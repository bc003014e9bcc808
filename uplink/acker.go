package uplink

import (
	"fmt"
	"sync"
)

// acker acknowledges delivered records to the buffer off the send path: each
// buffer Ack is an fsynced commit, and waiting for it between batches would
// halve the drain rate. Whatever queued up while one Ack ran goes in the
// next. Records whose Ack is lost (stop, crash) are sent again: at least once.
type acker struct {
	q    Queue
	ch   chan []uint64
	wg   sync.WaitGroup
	mu   sync.Mutex
	fail error
	// failed is closed with the first failure: a pump with nothing else to
	// wait for (the last batch's Ack failed, no new records) wakes on it.
	failed chan struct{}
}

func newAcker(q Queue) *acker {
	a := &acker{q: q, ch: make(chan []uint64, 64), failed: make(chan struct{})}
	a.wg.Add(1)
	go a.run()
	return a
}

func (a *acker) ack(seqs []uint64) { a.ch <- seqs }

func (a *acker) run() {
	defer a.wg.Done()
	for seqs := range a.ch {
		all := append([]uint64(nil), seqs...)
	more:
		for {
			select {
			case s, ok := <-a.ch:
				if !ok {
					break more
				}
				all = append(all, s...)
			default:
				break more
			}
		}
		if err := a.q.Ack(all...); err != nil {
			a.mu.Lock()
			if a.fail == nil {
				a.fail = fmt.Errorf("uplink: ack %d records: %w", len(all), err)
				close(a.failed)
			}
			a.mu.Unlock()
		}
	}
}

// err is the first Ack failure, which ends the pump: a buffer that cannot
// record deliveries would make the uplink resend forever.
func (a *acker) err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fail
}

// close waits for the queued acks to be committed.
func (a *acker) close() {
	close(a.ch)
	a.wg.Wait()
}
