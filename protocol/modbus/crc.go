package modbus

// crcTable is CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), computed
// once at package init; it is read-only after that.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC16 returns the CRC-16/MODBUS of b. On the wire it is sent low byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc = crc>>8 ^ crcTable[byte(crc)^x]
	}
	return crc
}

// AppendCRC appends the CRC of b, low byte first, as RTU frames carry it.
func AppendCRC(b []byte) []byte {
	c := CRC16(b)
	return append(b, byte(c), byte(c>>8))
}

// CheckCRC reports whether frame ends in the correct CRC of what precedes it.
func CheckCRC(frame []byte) bool {
	if len(frame) < 3 {
		return false
	}
	n := len(frame) - 2
	c := CRC16(frame[:n])
	return frame[n] == byte(c) && frame[n+1] == byte(c>>8)
}
