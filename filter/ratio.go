package filter

// A meter registers reverse flow with a different gain than forward (and a
// different cut-off), so the reverse half of an oscillation is not the same
// number as its forward half. ratio is reverse/forward registration of the
// same displaced water, learned per meter.
//
// The learner works on spans: the stretch from one interval that moved the
// reverse total to the next one. Whatever the totaliser's step, the reverse
// registered in a span is the closing interval's, and the forward phantom
// registered in it is that reverse divided by the ratio: the unquantised
// totals move together, so the quantisation errors of consecutive spans
// cancel instead of adding up. Spans are summed into chunks of a few steps
// of reverse; a chunk's forward holds also any real use of the span, so
// chunks with more forward than their reverse explains (beyond quantisation)
// are left out, and the estimate is the ratio of the sums of the rest. A
// span longer than spanGap (hours of quiet between surges) is not counted:
// it would hold the day's use.

const (
	ratioMin = 0.3 // plausible ratio bounds
	ratioMax = 1.2

	chunkSlots     = 16
	provisionSteps = 5  // steps of reverse that give a first estimate
	confidentSteps = 10 // and with four chunks, one the fleet prior may rest on
	// useAllowSteps and useAllowShare bound the forward a clean chunk may
	// show above what its reverse explains: a step or so of quantisation,
	// and the spread of a surge's ratio around the mean.
	useAllowSteps = 1.5
	useAllowShare = 0.25

	baseWindow       = 900e9  // quiet stretches this long measure the steady forward flow
	baseWindowCoarse = 7200e9 // on a coarse totaliser
	baseQuiet        = 1800e9 // a stretch is quiet this long after the last reverse
	baseSlots        = 4
)

// spanGap is the longest span counted: a fine totaliser steps its reverse
// every few seconds of a surge, a coarse one (10 L) once in an hour or two.
func spanGap(res float64) int64 {
	if res >= coarseRes {
		return 24 * 3600e9
	}
	return 1200e9
}

// chunkReverse is the reverse a chunk collects before it is stored.
func chunkReverse(res float64) float64 {
	return max(2*res, min(20*res, 0.01))
}

type chunk struct{ f, r float32 }

type ratioLearner struct {
	chunks  [chunkSlots]chunk
	n, next uint8

	lastRev int64   // end of the last interval that moved reverse; 0: none within spanGap
	fSince  float64 // forward since then
	f, r    float64 // chunk being collected
	dur     int64

	// A leak or other steady flow runs through every span and would pass
	// for phantom forward; its rate (the least forward rate of the last few
	// quiet stretches: zero in any household with a quiet quarter hour) is
	// taken out of a chunk's forward.
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

// observe feeds one interval's raw deltas. It reports whether the estimate
// may have changed.
func (l *ratioLearner) observe(start, t int64, dF, dR, res float64) bool {
	if dR == 0 && (l.lastRev == 0 || t-l.lastRev > baseQuiet) {
		l.baseVol += dF
		l.baseDur += t - start
		if l.baseDur >= baseWindowFor(res) {
			l.base[l.baseNext] = float32(l.baseVol / (float64(l.baseDur) / 3600e9))
			l.baseNext = (l.baseNext + 1) % baseSlots
			l.baseVol, l.baseDur = 0, 0
		}
	} else {
		l.baseVol, l.baseDur = 0, 0
	}
	gap := spanGap(res)
	if dR == 0 {
		if l.lastRev != 0 && t-l.lastRev > gap {
			l.store()
			l.lastRev, l.fSince = 0, 0
			return true
		}
		l.fSince += dF
		return false
	}
	if l.lastRev != 0 && t-l.lastRev <= gap {
		l.f += l.fSince + dF
		l.r += dR
		l.dur += t - l.lastRev
	} else {
		l.store() // the first reverse after a gap opens a span; the forward before it is not paired
	}
	l.lastRev, l.fSince = t, 0
	if l.r >= chunkReverse(res)*0.999 {
		l.store()
	}
	return true
}

// store files the chunk under way.
func (l *ratioLearner) store() {
	f := l.f - l.baseline()*float64(l.dur)/3600e9
	// A chunk with more reverse than any surge registers holds real
	// backflow: it says nothing about the ratio.
	if l.r > 0 && f > 0 && l.r <= f*ratioMax {
		l.chunks[l.next] = chunk{f: float32(f), r: float32(l.r)}
		l.next = (l.next + 1) % chunkSlots
		l.n = min(l.n+1, chunkSlots)
	}
	l.f, l.r, l.dur = 0, 0, 0
}

// confident reports whether the estimate rests on enough of the meter's own reverse.
func (l *ratioLearner) confident(res float64) bool {
	var sr float64
	for i := uint8(0); i < l.n; i++ {
		sr += float64(l.chunks[i].r)
	}
	return l.n >= 4 && sr >= confidentSteps*res
}

// estimate is the ratio of the sums of the chunks without use and ok, or
// prior and not ok while there is too little reverse to tell.
func (l *ratioLearner) estimate(prior, res float64) (rho float64, ok bool) {
	var sf, sr float64
	for i := uint8(0); i < l.n; i++ {
		sf += float64(l.chunks[i].f)
		sr += float64(l.chunks[i].r)
	}
	if l.r > 0 && l.f > 0 {
		sf, sr = sf+l.f, sr+l.r // the chunk under way counts too
	}
	if sr < provisionSteps*res || sf <= 0 {
		return prior, false
	}
	// Start from the upper end (use only lowers a chunk's ratio), then keep
	// the chunks whose forward the estimate explains, within a step or so
	// either way, and sum those.
	rho = l.upper()
	if rho == 0 {
		rho = sr / sf
	}
	for range 3 {
		sf, sr = 0, 0
		for i := uint8(0); i < l.n; i++ {
			c := l.chunks[i]
			want := float64(c.r) / rho
			lo, hi := want*(1-useAllowShare)-useAllowSteps*res, want*(1+useAllowShare)+useAllowSteps*res
			if float64(c.f) <= hi && float64(c.f) >= lo {
				sf += float64(c.f)
				sr += float64(c.r)
			}
		}
		if sf <= 0 {
			break
		}
		rho = sr / sf
	}
	return min(max(rho, ratioMin), ratioMax), true
}

// upper is the upper quartile of the chunk ratios, unweighted: a chunk of
// real backflow can be large, and must not outvote the surges.
func (l *ratioLearner) upper() float64 {
	var xs [chunkSlots]chunk
	s := xs[:0]
	for i := uint8(0); i < l.n; i++ {
		s = append(s, l.chunks[i])
	}
	if len(s) == 0 {
		return 0
	}
	for i := 1; i < len(s); i++ { // insertion sort by ratio, at most 16
		for j := i; j > 0 && s[j].r*s[j-1].f < s[j-1].r*s[j].f; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	c := s[(3*(len(s)-1)+2)/4]
	return float64(c.r / c.f)
}

// baseWindowFor is the quiet stretch that measures the steady flow: a
// coarse totaliser steps only every 40 min at a 15 L/h leak, so a quarter
// hour would mostly read zero.
func baseWindowFor(res float64) int64 {
	if res >= coarseRes {
		return baseWindowCoarse
	}
	return baseWindow
}
