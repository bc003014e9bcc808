package mbus

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		kind    Kind
		n       int
		c, a    byte
		ci      byte
		data    []byte
		wantErr error
		msg     string
	}{
		{name: "ack", in: []byte{0xE5, 0x10}, kind: KindAck, n: 1},
		{name: "snd_nke", in: []byte{0x10, 0x40, 0x05, 0x45, 0x16}, kind: KindShort, n: 5, c: 0x40, a: 5},
		{name: "req_ud2 fcb", in: []byte{0x10, 0x7B, 0xFE, 0x79, 0x16, 0xE5}, kind: KindShort, n: 5, c: 0x7B, a: 0xFE},
		{name: "control", in: []byte{0x68, 0x03, 0x03, 0x68, 0x53, 0xFE, 0x50, 0xA1, 0x16}, kind: KindControl, n: 9, c: 0x53, a: 0xFE, ci: 0x50},
		{name: "long", in: []byte{0x68, 0x05, 0x05, 0x68, 0x08, 0x01, 0x72, 0xAA, 0xBB, 0xE0, 0x16}, kind: KindLong, n: 11, c: 0x08, a: 1, ci: 0x72, data: []byte{0xAA, 0xBB}},
		{name: "empty", in: nil, wantErr: ErrIncomplete},
		{name: "short prefix", in: []byte{0x10, 0x40, 0x05}, wantErr: ErrIncomplete},
		{name: "long prefix header", in: []byte{0x68, 0x05, 0x05}, wantErr: ErrIncomplete},
		{name: "long prefix body", in: []byte{0x68, 0x05, 0x05, 0x68, 0x08, 0x01}, wantErr: ErrIncomplete},
		{name: "short checksum", in: []byte{0x10, 0x40, 0x05, 0x44, 0x16}, wantErr: ErrChecksum, msg: "checksum mismatch: got 0x44, want 0x45"},
		{name: "short stop", in: []byte{0x10, 0x40, 0x05, 0x45, 0x17}, wantErr: ErrStopByte},
		{name: "long checksum", in: []byte{0x68, 0x05, 0x05, 0x68, 0x08, 0x01, 0x72, 0xAA, 0xBB, 0x4A, 0x16}, wantErr: ErrChecksum, msg: "checksum mismatch: got 0x4A, want 0xE0"},
		{name: "long stop", in: []byte{0x68, 0x05, 0x05, 0x68, 0x08, 0x01, 0x72, 0xAA, 0xBB, 0xE0, 0x00}, wantErr: ErrStopByte},
		{name: "L differ", in: []byte{0x68, 0x05, 0x06}, wantErr: ErrLength},
		{name: "L too small", in: []byte{0x68, 0x02}, wantErr: ErrLength},
		{name: "second start", in: []byte{0x68, 0x05, 0x05, 0x69}, wantErr: ErrStartByte},
		{name: "start", in: []byte{0x00}, wantErr: ErrStartByte},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, err := Decode(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.msg != "" && err.Error() != tt.msg {
					t.Fatalf("message %q, want %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != tt.kind || n != tt.n || byte(f.C) != tt.c || f.Address != tt.a || f.CI != tt.ci || !bytes.Equal(f.Data, tt.data) {
				t.Fatalf("got %+v n=%d", f, n)
			}
			// Encoding what was decoded gives the same bytes back.
			enc, err := Encode(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, tt.in[:n]) {
				t.Fatalf("encode = % X, want % X", enc, tt.in[:n])
			}
		})
	}
}

func TestEncodeTooLong(t *testing.T) {
	_, err := Encode(Frame{Kind: KindLong, Data: make([]byte, MaxData+1)})
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v", err)
	}
	b, err := Encode(Frame{Kind: KindLong, Data: make([]byte, MaxData)})
	if err != nil || len(b) != 4+255+2 {
		t.Fatalf("max frame: len %d err %v", len(b), err)
	}
}

func TestCField(t *testing.T) {
	tests := []struct {
		c                            CField
		nke, req, snd, rsp, fcb, fcv bool
	}{
		{c: 0x40, nke: true},
		{c: 0x5B, req: true, fcv: true},
		{c: 0x7B, req: true, fcb: true, fcv: true},
		{c: 0x53, snd: true, fcv: true},
		{c: 0x73, snd: true, fcb: true, fcv: true},
		{c: 0x08, rsp: true},
		{c: 0x18, rsp: true, fcv: true},
	}
	for _, tt := range tests {
		c := tt.c
		if c.IsSndNke() != tt.nke || c.IsReqUd2() != tt.req || c.IsSndUd() != tt.snd || c.IsRspUd() != tt.rsp || c.FCB() != tt.fcb || c.FCV() != tt.fcv {
			t.Errorf("0x%02X: nke=%v req=%v snd=%v rsp=%v fcb=%v fcv=%v", byte(c), c.IsSndNke(), c.IsReqUd2(), c.IsSndUd(), c.IsRspUd(), c.FCB(), c.FCV())
		}
	}
	if CField(CReqUd2).WithFCB(true) != 0x7B || CField(0x7B).WithFCB(false) != 0x5B {
		t.Error("WithFCB")
	}
}
