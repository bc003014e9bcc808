// Package simulator runs virtual water meters on simulated RS-485 buses: a
// pseudo-terminal per bus (and a TCP listener for converters), with the line's
// real timing emulated because a pty is infinitely fast and ignores baud and
// parity. The pty does keep the baud the gateway set, so a gateway at the
// wrong speed gets its replies garbled as a UART at that speed would receive
// them (baud.go); parity stays invisible. Modbus RTU meters answer from register maps in configs/profiles,
// M-Bus meters from telegram layouts, CJ/T 188 meters (cjt188_meter.go:
// 901F/907F/D12x reads, broadcast read address, clock, address and valve
// writes; per-meter DI order, clock order, preamble, status layout, one
// total net of reverse or forward only; a valve that stops the model's
// flow); every meter's values come from the
// water physics in simulator/water, and faults can be injected per meter and
// per bus. Developers run it as cmd/metersim; tests start it in-process.
package simulator
