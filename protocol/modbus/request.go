package modbus

import "sort"

// Merge joins register spans into the fewest reads of at most maxRegs
// registers each, bridging gaps of up to maxGap unused registers: reading a
// few extra registers costs 2 bytes each on the wire, a separate request
// costs a whole round trip (request, turnaround, gaps). Greedy over sorted
// spans is optimal here because spans are intervals on a line.
func Merge(spans []Span, maxRegs, maxGap int) []Span {
	if len(spans) == 0 {
		return nil
	}
	s := append([]Span(nil), spans...)
	sort.Slice(s, func(i, j int) bool { return s[i].Start < s[j].Start })
	var out []Span
	cur := s[0]
	for _, sp := range s[1:] {
		curEnd := int(cur.Start) + int(cur.Count)
		spEnd := int(sp.Start) + int(sp.Count)
		gap := int(sp.Start) - curEnd
		newEnd := max(curEnd, spEnd)
		if gap <= maxGap && newEnd-int(cur.Start) <= maxRegs {
			cur.Count = uint16(newEnd - int(cur.Start))
			continue
		}
		out = append(out, cur)
		cur = sp
	}
	return append(out, cur)
}
