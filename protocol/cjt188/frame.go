package cjt188

import (
	"fmt"
)

// Frame bytes.
const (
	Preamble = 0xFE // wake-up bytes before 68, not in the checksum
	Start    = 0x68
	End      = 0x16
	// MinFrame is the length of a frame with an empty data field and no
	// preamble: 68 T A0..A6 C L CS 16.
	MinFrame = 13
	// MaxData is the largest data field L can announce.
	MaxData = 255
	// MaxPreamble is the most FE bytes a master sends; receivers accept any number.
	MaxPreamble = 4
)

// headerLen is 68 T A0..A6 C L.
const headerLen = 11

// Frame is one CJ/T 188 frame. Lead and the bytes after the end byte are the
// line's, not the frame's: Decode reports them and Encode writes a preamble
// of Preamble bytes only.
type Frame struct {
	// Preamble is the number of FE bytes the frame was sent with (Encode
	// writes this many). On decoding, the FE bytes right before 68.
	Preamble int
	// Skipped counts the other bytes before the frame on decoding: noise,
	// stray FF, a broken earlier frame. They are not decoded.
	Skipped int
	Type    MeterType
	Address Address
	Control Control
	Data    []byte // the data field: DI, SER, values; aliases the input on decoding
}

// Decode reads the first valid frame in b. Bytes before its 68 (preamble
// and stray bytes, counted in Preamble and Skipped) are tolerated; n is the
// number of bytes through its end byte, so b[n:] is what followed it (radio
// modules append RSSI bytes, for instance).
//
// A 68 that begins no valid frame is taken for a stray byte when a valid
// frame starts later in b; otherwise the first candidate's error is
// returned, or ErrIncomplete when some candidate may still become a frame.
func Decode(b []byte) (f Frame, n int, err error) {
	var first error
	incomplete := false
	for i := 0; i < len(b); i++ {
		if b[i] != Start {
			continue
		}
		fr, m, e := decodeAt(b[i:])
		if e == nil {
			pre := 0
			for j := i - 1; j >= 0 && b[j] == Preamble; j-- {
				pre++
			}
			fr.Preamble, fr.Skipped = pre, i-pre
			return fr, i + m, nil
		}
		if e == ErrIncomplete {
			incomplete = true
		} else if first == nil {
			first = e
		}
	}
	switch {
	case incomplete:
		return Frame{}, 0, ErrIncomplete
	case first != nil:
		return Frame{}, 0, first
	}
	return Frame{}, 0, ErrNoStart
}

// decodeAt decodes a frame that starts (68) at b[0].
func decodeAt(b []byte) (Frame, int, error) {
	if len(b) < headerLen {
		return Frame{}, 0, ErrIncomplete
	}
	l := int(b[10])
	total := headerLen + l + 2
	if len(b) < total {
		return Frame{}, 0, ErrIncomplete
	}
	cs := Checksum(b[:headerLen+l])
	if got := b[headerLen+l]; got != cs {
		return Frame{}, 0, fmt.Errorf("%w %02X, computed %02X", ErrChecksum, got, cs)
	}
	if e := b[total-1]; e != End {
		return Frame{}, 0, fmt.Errorf("%w %02X, want 16", ErrEnd, e)
	}
	var f Frame
	f.Type = MeterType(b[1])
	copy(f.Address[:], b[2:9])
	f.Control = Control(b[9])
	f.Data = b[headerLen : headerLen+l : headerLen+l]
	return f, total, nil
}

// Checksum is the sum of b modulo 256: CS over 68 through the last data byte.
func Checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// Encode writes f with f.Preamble FE bytes before it.
func Encode(f Frame) ([]byte, error) { return AppendFrame(nil, f) }

// AppendFrame appends f, with its preamble, to dst.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	if len(f.Data) > MaxData {
		return dst, fmt.Errorf("%w: %d data bytes, at most %d", ErrLength, len(f.Data), MaxData)
	}
	if f.Preamble < 0 {
		return dst, fmt.Errorf("%w: preamble %d", ErrLength, f.Preamble)
	}
	for range f.Preamble {
		dst = append(dst, Preamble)
	}
	start := len(dst)
	dst = append(dst, Start, byte(f.Type))
	dst = append(dst, f.Address[:]...)
	dst = append(dst, byte(f.Control), byte(len(f.Data)))
	dst = append(dst, f.Data...)
	dst = append(dst, Checksum(dst[start:]), End)
	return dst, nil
}
