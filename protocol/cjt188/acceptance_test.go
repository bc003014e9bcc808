package cjt188

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// sharedFrames is ../shared/cjt188/frames.json seen from this package. The
// frames are read from there, not copied: their origin is not ours to relicense.
const sharedFrames = "../../../shared/cjt188/frames.json"

type sharedFrame struct {
	What    string         `json:"what"`
	Hex     string         `json:"hex"`
	Decoded map[string]any `json:"decoded"`
}

func loadShared(t testing.TB) []sharedFrame {
	t.Helper()
	data, err := os.ReadFile(sharedFrames)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared CJ/T 188 frames missing at %s: %v", sharedFrames, err)
		}
		t.Skipf("shared CJ/T 188 frames not present at %s (CI=true makes this fail)", sharedFrames)
	}
	var fs []sharedFrame
	if err := json.Unmarshal(data, &fs); err != nil {
		t.Fatalf("%s: %v", sharedFrames, err)
	}
	if len(fs) == 0 {
		t.Fatalf("%s: no frames", sharedFrames)
	}
	return fs
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// errorNames maps frames.json's "error" values to the sentinels.
var errorNames = map[string]error{"checksum": ErrChecksum, "end": ErrEnd, "length": ErrLength, "incomplete": ErrIncomplete}

// TestSharedFrames: every frame of ../shared/cjt188/frames.json decodes to
// exactly the fields given there; the wrong-checksum one is refused.
func TestSharedFrames(t *testing.T) {
	for _, sf := range loadShared(t) {
		t.Run(sf.What, func(t *testing.T) {
			d, err := Describe(mustHex(t, sf.Hex), DescribeOptions{})
			if name, ok := sf.Decoded["error"].(string); ok {
				want := errorNames[name]
				if want == nil {
					t.Fatalf("frames.json names error %q this test does not know", name)
				}
				if !errors.Is(err, want) {
					t.Fatalf("err %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(js, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, sf.Decoded) {
				t.Errorf("decoded\n %s\nwant\n %v", js, sf.Decoded)
			}
		})
	}
}

// TestSharedWrongChecksumMessage: the refusal says what is wrong.
func TestSharedWrongChecksumMessage(t *testing.T) {
	for _, sf := range loadShared(t) {
		if sf.Decoded["error"] != "checksum" {
			continue
		}
		_, _, err := Decode(mustHex(t, sf.Hex))
		if err == nil || err.Error() != "checksum 08, computed 13" {
			t.Fatalf("err %v, want checksum 08, computed 13", err)
		}
		return
	}
	t.Fatal("frames.json has no wrong-checksum frame")
}
