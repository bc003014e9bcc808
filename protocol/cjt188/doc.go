// Package cjt188 is a pure codec for CJ/T 188 (2004, and the 2018 revision
// that keeps its frame layout), the household-meter protocol most Chinese
// water meters speak on an M-Bus or RS-485 line: frames with their
// preamble, meter types, BCD addresses, control codes, data identifiers in
// either byte order, and the data the water meters answer (901F current
// data, 907F clock, D120–D12B settlement history, 810A address) and the
// writes a concentrator sends (A015 clock, A017 valve, A018 address).
//
// It does no I/O and reads no clock: bytes in, values out. Decoders never
// panic and bound every loop; errors wrap the sentinel values in errors.go,
// and say what is wrong ("checksum 08, computed 13").
package cjt188
