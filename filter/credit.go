package filter

// credit carries, beyond the hold-back window, at most one band of unpaired
// volume per direction. Coarse totalisers (10 L a step) register the two
// halves of the same surges as steps that can be an hour apart; a step of
// reverse left over after the window waits here for the forward step that
// will follow, and a forward step during surge activity waits for its
// reverse. The band is one totaliser step, so what a real use can be delayed
// by is bounded by one step; forward credit that finds no reverse is
// released as consumption, late but not lost.
type credit struct {
	fwd, rev   float64 // m3, forward-equivalent
	fwdT, revT int64
}

const (
	creditSteps     = 1.0
	creditSurgeSpan = int64(3 * 3600e9) // forward is withheld only this soon after reverse activity
	fwdCreditLife   = int64(3 * 3600e9)
	revCreditLife   = int64(6 * 3600e9)
)

// settle applies the credit band to a released interval's unpaired volumes
// and returns consumption and real backflow (both forward-equivalent) and
// the further phantom found.
func (m *meter) settle(it *item) (cons, back, phantom float64) {
	c := &m.credit
	w := creditSteps * m.res
	if c.fwd > 0 && it.t-c.fwdT > fwdCreditLife {
		cons += c.fwd // no reverse came: it was real
		c.fwd = 0
	}
	if c.rev > 0 && it.t-c.revT > revCreditLife {
		c.rev = 0
	}
	if it.ur > 0 {
		q := min(c.fwd, it.ur)
		c.fwd -= q
		rest := it.ur - q
		add := min(rest, w-c.rev)
		if add > 0 {
			c.rev += add
			c.revT = it.t
			rest -= add
		}
		back += rest
	}
	if it.uf > 0 {
		q := min(c.rev, it.uf)
		c.rev -= q
		phantom += q
		rest := it.uf - q
		if it.t-m.lastRevT <= creditSurgeSpan {
			add := min(rest, w-c.fwd)
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
