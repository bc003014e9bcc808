package mbus

// dataLen is the data field length by the DIF's low nibble; -1 is variable
// (LVAR) and -2 a special function.
var dataLen = [16]int{0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, -2}

// moreRecordsFollow walks the variable data records of a long-header (CI 72)
// or headerless (CI 78) answer far enough to find DIF 1F, "more records
// follow in the next telegram". It only skips records; decoding them is
// protocol/mbus's. A malformed walk reports false, so a bad telegram ends a
// multi-telegram read instead of prolonging it.
func moreRecordsFollow(ci byte, data []byte) bool {
	i := 0
	switch ci {
	case 0x72, 0x76:
		i = 12
	case 0x7A:
		i = 4
	case 0x78:
	default:
		return false
	}
	for i < len(data) {
		dif := data[i]
		i++
		switch dif {
		case 0x2F: // idle filler
			continue
		case 0x1F:
			return true
		case 0x0F:
			return false
		}
		for ext := dif; ext&0x80 != 0; i++ { // DIFEs
			if i >= len(data) {
				return false
			}
			ext = data[i]
		}
		if i >= len(data) {
			return false
		}
		vif := data[i]
		i++
		if vif&0x7F == 0x7C { // plain-text VIF: length and text follow
			if i >= len(data) {
				return false
			}
			i += 1 + int(data[i])
		}
		for ext := vif; ext&0x80 != 0; i++ { // VIFEs
			if i >= len(data) {
				return false
			}
			ext = data[i]
		}
		n := dataLen[dif&0x0F]
		switch n {
		case -2:
			return false
		case -1:
			if i >= len(data) {
				return false
			}
			l := data[i]
			i++
			switch {
			case l <= 0xBF:
				n = int(l)
			case l <= 0xCF: // positive BCD, 2 digits a byte
				n = int(l - 0xC0)
			case l <= 0xDF: // negative BCD
				n = int(l - 0xD0)
			case l <= 0xEF: // binary
				n = int(l - 0xE0)
			case l <= 0xF4:
				n = 4 * int(l-0xEC)
			case l == 0xF5:
				n = 48
			case l == 0xF6:
				n = 64
			default:
				return false
			}
		}
		i += n
	}
	return false
}
