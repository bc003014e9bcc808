package simulator

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"tidegate/simulator/water"
)

// Babble is a rogue device on the line that streams bytes whatever anyone
// else does: a failing meter's transmitter, a chattering radio module, a
// converter streaming noise. The zero value (rate 0) is off.
type Babble struct {
	// Rate is bytes per second. A pty is not paced by the baud rate here:
	// a converter on TCP can stream far faster than its serial side.
	Rate int `yaml:"rate"`
	// Burst and Pause make it come and go: on for Burst, off for Pause;
	// a zero Burst streams continuously.
	Burst water.Duration `yaml:"burst"`
	Pause water.Duration `yaml:"pause"`
	// After delays its start, counted from the bus's start (pty) or the
	// connection's (TCP).
	After water.Duration `yaml:"after"`
	// Pattern is hex bytes ("A5", "00 FF") sent over and over instead of
	// random ones: a stream that never holds a frame's start byte is what
	// kept a master reading for ever.
	Pattern string `yaml:"pattern"`
}

// pattern decodes Pattern; nil for random bytes.
func (f Babble) pattern() ([]byte, error) {
	if f.Pattern == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(f.Pattern, " ", ""))
	if err == nil && len(b) == 0 {
		err = fmt.Errorf("empty")
	}
	if err != nil {
		return nil, fmt.Errorf("babble.pattern %q: want hex bytes: %w", f.Pattern, err)
	}
	return b, nil
}

// babbleTick is how often a babbler writes its share of bytes.
const babbleTick = 10 * time.Millisecond

// babble streams random bytes (never 0xE5 runs or frames on purpose, just
// noise) to ep at b.Rate until ctx ends or a write fails. It takes no
// turn on the line: what it sends lands in the middle of requests and
// answers, as a real babbler's does.
func (b *Bus) babble(ctx context.Context, ep endpoint, seed uint64) {
	f := b.faults.Babble
	rng := rand.New(rand.NewPCG(seed, 11))
	if !sleepCtx(ctx, time.Duration(f.After)) {
		return
	}
	per := max(f.Rate*int(babbleTick)/int(time.Second), 1)
	every := babbleTick
	if f.Rate*int(babbleTick)/int(time.Second) < 1 {
		every = time.Second / time.Duration(f.Rate)
	}
	chunk := make([]byte, per)
	pat, _ := f.pattern() // checked with the config
	at := 0
	burstEnd := time.Now().Add(time.Duration(f.Burst))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f.Burst > 0 && time.Now().After(burstEnd) {
			if !sleepCtx(ctx, time.Duration(f.Pause)) {
				return
			}
			burstEnd = time.Now().Add(time.Duration(f.Burst))
		}
		for i := range chunk {
			if pat != nil {
				chunk[i] = pat[at%len(pat)]
				at++
			} else {
				chunk[i] = byte(rng.UintN(256))
			}
		}
		if _, err := ep.Write(chunk); err != nil {
			return
		}
		b.stats.babbled.Add(int64(len(chunk)))
	}
}

// sleepCtx sleeps d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
