// Package mbus is a pure codec for wired M-Bus: the EN 13757-2 link layer
// (ACK, short, control and long frames) and the EN 13757-3 application layer
// (fixed header, data records with DIF/DIFE/VIF/VIFE). It does no I/O and
// reads no clock: bytes in, values out. Decoders never panic and bound every
// loop; errors wrap the sentinel values in errors.go.
package mbus
