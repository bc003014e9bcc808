package mbus

import "fmt"

// Frame delimiters of EN 13757-2.
const (
	// StartShort begins a short frame 10 C A CS 16.
	StartShort byte = 0x10
	// StartLong begins a control or long frame 68 L L 68 C A CI ... CS 16.
	StartLong byte = 0x68
	// Stop ends short, control and long frames.
	Stop byte = 0x16
	// Ack is the single-character frame E5.
	Ack byte = 0xE5
	// MaxData is the largest number of user data bytes after CI in a long
	// frame: L is one byte and counts C, A and CI as well.
	MaxData = 255 - 3
)

// Kind tells the four frame formats apart.
type Kind uint8

// Frame kinds.
const (
	// KindAck is the single character E5.
	KindAck Kind = iota + 1
	// KindShort is 10 C A CS 16.
	KindShort
	// KindControl is a long-format frame with L=3 (C, A, CI, no data).
	KindControl
	// KindLong is a long frame with user data after CI.
	KindLong
)

// String returns the lower-case name of the kind.
func (k Kind) String() string {
	switch k {
	case KindAck:
		return "ack"
	case KindShort:
		return "short"
	case KindControl:
		return "control"
	case KindLong:
		return "long"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Frame is one link-layer frame. The zero value is not a valid frame; set
// Kind. For KindAck the other fields are ignored, for KindShort CI and Data.
type Frame struct {
	Kind    Kind
	C       CField
	Address byte
	CI      byte
	// Data is the user data after CI. Decode returns a slice of its input,
	// not a copy, so a caller that reuses the buffer must copy it.
	Data []byte
}

// Decode reads one frame from the start of b. It returns the frame and the
// number of bytes it used, so a stream reader can frame a byte stream. If b
// is a valid prefix that needs more bytes, the error wraps ErrIncomplete;
// every other error means b does not start with a valid frame (the reader
// may skip a byte and resynchronise).
func Decode(b []byte) (Frame, int, error) {
	if len(b) == 0 {
		return Frame{}, 0, fmt.Errorf("%w: no bytes", ErrIncomplete)
	}
	switch b[0] {
	case Ack:
		return Frame{Kind: KindAck}, 1, nil
	case StartShort:
		if len(b) < 5 {
			return Frame{}, 0, fmt.Errorf("%w: short frame needs 5 bytes, have %d", ErrIncomplete, len(b))
		}
		if want := b[1] + b[2]; b[3] != want {
			return Frame{}, 0, fmt.Errorf("%w: got 0x%02X, want 0x%02X", ErrChecksum, b[3], want)
		}
		if b[4] != Stop {
			return Frame{}, 0, fmt.Errorf("%w: got 0x%02X at offset 4, want 0x16", ErrStopByte, b[4])
		}
		return Frame{Kind: KindShort, C: CField(b[1]), Address: b[2]}, 5, nil
	case StartLong:
		return decodeLong(b)
	}
	return Frame{}, 0, fmt.Errorf("%w: got 0x%02X, want 0xE5, 0x10 or 0x68", ErrStartByte, b[0])
}

func decodeLong(b []byte) (Frame, int, error) {
	// Validate what is present before asking for more, so that garbage is
	// reported as soon as it is seen rather than after waiting for L bytes.
	if len(b) >= 3 && b[1] != b[2] {
		return Frame{}, 0, fmt.Errorf("%w: L fields differ (0x%02X, 0x%02X)", ErrLength, b[1], b[2])
	}
	if len(b) >= 2 && b[1] < 3 {
		return Frame{}, 0, fmt.Errorf("%w: L=%d, want at least 3 (C, A, CI)", ErrLength, b[1])
	}
	if len(b) >= 4 && b[3] != StartLong {
		return Frame{}, 0, fmt.Errorf("%w: got 0x%02X at offset 3, want 0x68", ErrStartByte, b[3])
	}
	if len(b) < 4 {
		return Frame{}, 0, fmt.Errorf("%w: long frame header needs 4 bytes, have %d", ErrIncomplete, len(b))
	}
	l := int(b[1])
	total := 4 + l + 2
	if len(b) < total {
		return Frame{}, 0, fmt.Errorf("%w: long frame needs %d bytes, have %d", ErrIncomplete, total, len(b))
	}
	body := b[4 : 4+l]
	if got, want := b[4+l], sum(body); got != want {
		return Frame{}, 0, fmt.Errorf("%w: got 0x%02X, want 0x%02X", ErrChecksum, got, want)
	}
	if b[total-1] != Stop {
		return Frame{}, 0, fmt.Errorf("%w: got 0x%02X at offset %d, want 0x16", ErrStopByte, b[total-1], total-1)
	}
	f := Frame{Kind: KindLong, C: CField(body[0]), Address: body[1], CI: body[2], Data: body[3:]}
	if l == 3 {
		f.Kind = KindControl
		f.Data = nil
	}
	return f, total, nil
}

// sum is the EN 13757-2 checksum: arithmetic sum modulo 256.
func sum(b []byte) byte {
	var s byte
	for _, x := range b {
		s += x
	}
	return s
}

// Encode returns the wire bytes of f.
func Encode(f Frame) ([]byte, error) {
	return AppendFrame(nil, f)
}

// AppendFrame appends the wire bytes of f to dst. A KindLong frame with
// empty Data is encoded as a control frame (the two are the same on the wire).
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	switch f.Kind {
	case KindAck:
		return append(dst, Ack), nil
	case KindShort:
		c, a := byte(f.C), f.Address
		return append(dst, StartShort, c, a, c+a, Stop), nil
	case KindControl, KindLong:
		data := f.Data
		if f.Kind == KindControl {
			data = nil
		}
		if len(data) > MaxData {
			return dst, fmt.Errorf("%w: %d data bytes, max %d", ErrTooLong, len(data), MaxData)
		}
		l := byte(3 + len(data))
		dst = append(dst, StartLong, l, l, StartLong, byte(f.C), f.Address, f.CI)
		dst = append(dst, data...)
		cs := byte(f.C) + f.Address + f.CI + sum(data)
		return append(dst, cs, Stop), nil
	}
	return dst, fmt.Errorf("mbus: cannot encode frame of %v", f.Kind)
}

// ShortFrame returns the wire bytes of the short frame 10 C A CS 16.
func ShortFrame(c byte, addr byte) []byte {
	return []byte{StartShort, c, addr, c + addr, Stop}
}
