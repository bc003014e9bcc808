package filter

// burstState averages consumption over half the burst span, so that short
// polls and coarse totaliser steps do not look like bursts; two such halves
// in a row above the burst flow make a burst.
type burstState struct {
	start int64
	vol   float64
	above uint8 // consecutive half-spans above the threshold
	fresh bool  // burst not reported yet
	on    bool
}

func (b *burstState) observe(start, t int64, cons float64, c *Config) bool {
	half := int64(c.BurstFor) / 2
	if b.start == 0 {
		b.start = start
	}
	b.vol += cons
	if t-b.start >= half {
		rate := b.vol / (float64(t-b.start) / 3600e9)
		if rate >= c.BurstFlow {
			b.above = min(b.above+1, 2)
		} else {
			b.above = 0
		}
		b.start, b.vol = t, 0
		was := b.on
		b.on = b.above >= 2
		if b.on && !was {
			b.fresh = true
		}
	}
	return b.on
}
