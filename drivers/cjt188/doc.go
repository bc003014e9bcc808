// Package cjt188 is the CJ/T 188 master: it reads water meters over a serial
// line (an M-Bus level converter or RS-485) or a TCP converter, 2400 8E1 by
// default, one request at a time. Framing and values are protocol/cjt188's;
// here are the wire's concerns: the wake-up preamble, the answer timeout
// from the baud rate, late answers of earlier requests (told apart by SER),
// converter echoes, stray bytes, and several meters answering a broadcast.
package cjt188
