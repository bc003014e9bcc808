// Package mbus is the wired M-Bus master of the drivers (EN 13757-2 link
// layer over a drivers/link line, serial or TCP converter): SND_NKE to the
// meter's own address, REQ_UD2 with the frame count bit kept per meter,
// multi-telegram reads with a cap, primary and secondary addressing, answer
// checks (A-field, identification), echo cancellation for level converters
// that hear themselves, and the technicians' scans: primary 0–250 and the
// secondary-address wildcard tree search.
//
// Framing is protocol/mbus's; this package owns the timing and the I/O. It
// does one transaction at a time and expects its bus goroutine to be the only
// user of the line.
package mbus
