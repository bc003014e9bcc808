package filter

import "sort"

// A meter registers reverse flow with a different gain than forward (and a
// different cut-off), so the reverse half of an oscillation is not the same
// number as its forward half. ratio is reverse/forward registration of the
// same displaced water, learned per meter from surge episodes: stretches with
// reverse registration, bounded by quiet. Episodes that contain real use or
// backflow give wrong samples; a weighted median of the last few keeps them
// from moving the estimate.

const (
	ratioSlots       = 8
	episodePre       = 120e9 // forward this long before the first reverse belongs to the episode (ns)
	episodeTail      = 120e9 // and this long after the last
	episodeQuiet     = 600e9 // no reverse this long closes an episode
	minEpisodeRes    = 20    // an episode must move reverse by this many totaliser steps
	provisionalSteps = 5     // a pool this big gives a provisional estimate
	ratioMin         = 0.3   // plausible ratio bounds
	ratioMax         = 1.2
	// Real use inside an episode lowers its sample, backflow (rare) raises
	// it: so the estimate is an upper quantile of the samples.
	ratioQuantile = 0.75
	ratioTrim     = 0.9
	baseWindow    = 900e9 // quiet stretches this long measure the steady forward flow
	baseSlots     = 4
)

// episodeSpan is how long before the first reverse and after the last the
// forward belongs to the episode: the halves of an oscillation are seconds
// apart, but a coarse totaliser shows them as steps minutes apart.
func episodeSpan(res float64) int64 {
	return int64(max(1, min(res/0.001, 10))) * 120e9
}

type ratioSample struct{ ratio, weight float32 }

type ratioLearner struct {
	slots   [ratioSlots]ratioSample
	n, next uint8
	open    bool
	f, r    float64 // episode forward / reverse
	// Episodes too small for a sample on their own (a coarse totaliser
	// steps a few times an episode) are pooled until the pool is.
	poolF, poolR float64
	poolRes      float64 // resolution when the pool was last fed
	tailF        float64 // forward since the last reverse, within episodeTail
	lastRev      int64
	start        int64 // episode start, ns

	// A leak or other steady flow runs through every episode and would pass
	// for phantom forward; its rate (the least forward rate of the last few
	// quiet stretches: zero in any household with a quiet quarter hour) is
	// taken out of the episode's forward.
	baseVol  float64
	baseDur  int64
	base     [baseSlots]float32 // m3/h
	baseNext uint8
}

func (l *ratioLearner) baseline() float64 {
	b := float64(l.base[0])
	for _, x := range l.base[1:] {
		b = min(b, float64(x))
	}
	return b
}

// estimate is the weighted upper quantile of the samples, or prior when none.
func (l *ratioLearner) estimate(prior float64) float64 {
	if l.n == 0 {
		// Before the first full sample, a pool of a few steps already
		// beats a prior that may be 40 % off.
		f, r := l.poolF, l.poolR
		if l.open {
			f, r = f+l.f, r+l.r // the episode under way counts too
		}
		// Outside the plausible range the stretch holds backflow or use.
		if r >= provisionalSteps*l.poolRes && f > 0 && r/f >= ratioMin && r/f <= ratioMax {
			return r / f
		}
		return prior
	}
	var buf [ratioSlots]ratioSample
	s := buf[:0]
	for i := uint8(0); i < l.n; i++ {
		s = append(s, l.slots[i])
	}
	sort.Slice(s, func(i, j int) bool { return s[i].ratio < s[j].ratio })
	top := quantile(s, ratioQuantile)
	// Samples well below the upper quantile are episodes with use in them:
	// drop them, and take the weighted median of the rest.
	k := 0
	for k < len(s) && float64(s[k].ratio) < ratioTrim*top {
		k++
	}
	return quantile(s[k:], 0.5)
}

// quantile is the weighted q-quantile of samples sorted by ratio.
func quantile(s []ratioSample, q float32) float64 {
	var total float32
	for _, x := range s {
		total += x.weight
	}
	var acc float32
	for _, x := range s {
		acc += x.weight
		if acc >= total*q {
			return float64(x.ratio)
		}
	}
	return float64(s[len(s)-1].ratio)
}

// observe feeds one interval's raw deltas. preF is the forward registered in
// the held-back intervals just before t, counted when an episode opens.
// It reports whether the estimate may have changed.
func (l *ratioLearner) observe(start, t int64, dF, dR, res float64, preF func(since int64) float64) bool {
	changed := false
	span := episodeSpan(res)
	if l.open && dR == 0 && t-l.lastRev > span+episodeQuiet {
		changed = l.close(res)
	}
	if !l.open && dR == 0 {
		l.baseVol += dF
		l.baseDur += t - start
		if l.baseDur >= baseWindow {
			l.base[l.baseNext] = float32(l.baseVol / (float64(l.baseDur) / 3600e9))
			l.baseNext = (l.baseNext + 1) % baseSlots
			l.baseVol, l.baseDur = 0, 0
		}
	}
	if dR > 0 {
		if !l.open {
			l.open, l.f, l.r, l.tailF = true, preF(t-span), 0, 0
			l.start = min(t-span, start)
			l.baseVol, l.baseDur = 0, 0
		}
		l.f += l.tailF + dF
		l.r += dR
		l.tailF = 0
		l.lastRev = t
		if l.n == 0 {
			l.poolRes = res
			changed = true // the provisional estimate moves with the episode
		}
	} else if l.open && t-l.lastRev <= span {
		l.tailF += dF
	}
	return changed
}

func (l *ratioLearner) close(res float64) bool {
	l.open = false
	l.f -= l.baseline() * float64(l.lastRev+episodeSpan(res)-l.start) / 3600e9
	if l.f <= 0 {
		return false
	}
	if l.r < minEpisodeRes*res {
		l.poolF += l.f
		l.poolR += l.r
		l.poolRes = res
		if l.poolR < minEpisodeRes*res {
			return l.n == 0 && l.poolR >= provisionalSteps*res
		}
		l.f, l.r, l.poolF, l.poolR = l.poolF, l.poolR, 0, 0
	}
	x := l.r / l.f
	if x < ratioMin || x > ratioMax {
		return false
	}
	l.slots[l.next] = ratioSample{ratio: float32(x), weight: float32(min(l.r/res, 1000))}
	l.next = (l.next + 1) % ratioSlots
	if l.n < ratioSlots {
		l.n++
	}
	return true
}
