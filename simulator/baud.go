package simulator

// A pty carries bytes, not bits: the kernel ignores the baud rate the
// gateway sets, so a gateway at the wrong speed would talk to metersim as
// if it were right. metersim reads that baud back from the pty master and,
// when it differs from the bus's, sends each reply as a UART at the
// gateway's speed would receive the meter's bits: garbled bytes, framing
// errors, no valid frame. (A real meter would mostly not understand the
// request either and stay silent; answering shows the mismatch the way a
// technician meets it on a scope or a sniffer.) Parity and data bits cannot
// be read back this way: the pty clears PARENB when it is set, so a parity
// mistake cannot be simulated on a pty.

// resample is what a UART receiving at baud to makes of data sent in line
// format l at l.Baud: it waits for a falling edge, samples each bit in the
// middle of its own bit time, and takes the byte whatever the stop bit
// says. At the same baud it returns data unchanged.
func resample(data []byte, l Line, to int) []byte {
	if to <= 0 || to == l.Baud || len(data) == 0 {
		return data
	}
	parity := 0
	if l.Parity == "E" || l.Parity == "O" {
		parity = 1
	}
	// The waveform, one level per sender bit: start 0, data LSB first,
	// parity, stop 1s.
	var bits []bool
	for _, c := range data {
		bits = append(bits, false)
		ones := 0
		for i := 0; i < l.DataBits; i++ {
			b := c>>i&1 == 1
			if b {
				ones++
			}
			bits = append(bits, b)
		}
		if parity == 1 {
			bits = append(bits, (ones%2 == 1) == (l.Parity == "E"))
		}
		for i := 0; i < l.StopBits; i++ {
			bits = append(bits, true)
		}
	}
	// Time in units of 1/(2·from·to) s: a sender bit is 2·to units, a
	// receiver bit 2·from, half a receiver bit from.
	from := int64(l.Baud)
	sbit, rbit := 2*int64(to), 2*from
	level := func(t int64) bool {
		k := t / sbit
		if t < 0 || k >= int64(len(bits)) {
			return true // idle line
		}
		return bits[k]
	}
	var out []byte
	charBits := int64(1 + l.DataBits + parity)
	for k, t := int64(0), int64(0); k < int64(len(bits)); k++ {
		if k*sbit < t || bits[k] || (k > 0 && !bits[k-1]) {
			continue // not a falling edge the receiver is waiting for
		}
		edge := k * sbit
		var c byte
		for i := 0; i < l.DataBits; i++ {
			if level(edge + int64(1+i)*rbit + from) {
				c |= 1 << i
			}
		}
		out = append(out, c)
		t = edge + charBits*rbit + from // the middle of the stop bit
	}
	return out
}
