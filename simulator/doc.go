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
//
// Faults (faults.go, babble.go), in a sim config or BusConfig/MeterConfig:
//
//	meter: no_answer, late (late_by), crc, truncated, wrong_address, exception
//	       (Modbus), trailing and garbage (CJ/T 188), dead, silent [{from, for}],
//	       stuck (probability per answer) with stuck_for (default 10s): the
//	       meter keeps sending that answer back to back, the line jammed
//	bus:   noise_every, collision, and babble {rate: bytes/s, burst, pause,
//	       after, pattern: hex}: a rogue device streaming on the pty and to
//	       every TCP client, continuously or in bursts, random bytes or a pattern
//
// A config without profiles: uses the Modbus profiles built into tidegate
// (package configs); a profiles: folder adds to them or overrides by name.
package simulator
