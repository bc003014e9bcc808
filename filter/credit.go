package filter

import "tidegate/reading"

// credit carries, beyond the hold-back window, at most one totaliser step of
// forward registered during surge activity, waiting for its reverse, and on
// a coarse totaliser at most one step of reverse waiting for its forward.
// Coarse totalisers (10 L a step) register the two halves of the same
// surges as steps that can be an hour apart, in either order. What a real
// use can be delayed or reduced by is bounded by one step; forward credit
// that finds no reverse is released as consumption, late but not lost.
type credit struct {
	fwd  float64 // m3
	fwdT int64
	rev  float64 // forward-equivalent m3 of surge reverse still waiting for its forward step
	revT int64
}

const (
	creditSteps     = 1.0
	creditSurgeSpan = int64(3 * 3600e9) // forward is withheld only this soon after reverse activity
	fwdCreditLife   = int64(3 * 3600e9)
	// A coarse totaliser's reverse step can come before the forward step
	// of the same surges: up to revSteps of it (forward-equivalent) wait
	// revLife for that forward step.
	revSteps = 1.0
	revLife  = int64(3600e9)
)

// settle applies the credit to a released interval's unpaired volumes and
// returns consumption and real backflow (both forward-equivalent) and the
// further phantom found.
func (m *meter) settle(it *item) (cons, back, phantom float64) {
	c := &m.credit
	cons = it.steady
	if c.fwd > 0 && it.t-c.fwdT > fwdCreditLife {
		cons += c.fwd // no reverse came: it was real
		c.fwd = 0
	}
	if c.rev > 0 && it.t-c.revT > revLife {
		back += c.rev // no forward came: it was real backflow
		c.rev = 0
	}
	if it.ur > 0 {
		q := min(c.fwd, it.ur)
		if it.dF == 0 && it.r.Has&reading.HasFlow != 0 && it.r.Flow < 0 {
			// Water ran backwards at the poll and nothing went forward in
			// the interval: one-way flow, a backflow, not the reverse half
			// of the forward withheld.
			q = 0
		}
		c.fwd -= q
		rest := it.ur - q
		if m.res >= coarseRes {
			add := min(rest, revSteps*m.res-c.rev)
			if add > 0 {
				c.rev += add
				c.revT = it.t
				rest -= add
			}
		}
		// Reverse left over beside a surge's paired volume is kept: it
		// may be a surge's tail (ratio or step error) or a backflow under
		// the surge, and a backflow removed hides a contamination event.
		back += rest
	}
	if it.uf > 0 {
		rest := it.uf
		if c.rev > 0 {
			q := min(c.rev, rest)
			c.rev -= q
			phantom += q
			rest -= q
		}
		if it.t-m.lastRevT <= creditSurgeSpan {
			add := min(rest, creditSteps*m.res-c.fwd)
			if add > 0 {
				c.fwd += add
				c.fwdT = it.t
				phantom += add
				rest -= add
			}
		}
		cons += rest
	}
	return cons, back, phantom
}
