package config

import (
	"encoding/json"
	"strings"
	"testing"
)

const meterFile = `gateway: {id: gw-1}
buses:
  - {name: bus1, protocol: mbus, device: /dev/ttyUSB0}
# the flats of block 4
meters:
  # ground floor
  - {id: flat-1, bus: bus1, address: 1}   # replaced 2025-03
  - id: flat-2          # block form
    bus: bus1
    address: 2

  # first floor
  - {id: flat-3, bus: bus1, address: 3}

# where the readings go
mqtt: {broker: "tcp://127.0.0.1:1883"}
buffer: {path: /tmp/b.db}
`

func TestUpsertMetersKeepsTheRest(t *testing.T) {
	out, err := UpsertMeters([]byte(meterFile), []json.RawMessage{
		json.RawMessage(`{"id":"flat-1","bus":"bus1","address":11,"number":"0012","poll":{"flow":"10s"}}`),
		json.RawMessage(`{"id":"flat-2","bus":"bus1","address":12}`),
		json.RawMessage(`{"id":"flat-4","bus":"bus1","address":4}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		"  - {id: flat-1, bus: bus1, address: 1}   # replaced 2025-03\n", `  - {id: flat-1, bus: bus1, address: 11, number: "0012", poll: {flow: 10s}}  # replaced 2025-03`+"\n",
		"  - id: flat-2          # block form\n    bus: bus1\n    address: 2\n", "  - {id: flat-2, bus: bus1, address: 12}\n",
		"  - {id: flat-3, bus: bus1, address: 3}\n", "  - {id: flat-3, bus: bus1, address: 3}\n  - {id: flat-4, bus: bus1, address: 4}\n",
	).Replace(meterFile)
	if string(out) != want {
		t.Fatalf("upsert:\n%s\nwant:\n%s", out, want)
	}
	c, err := Parse("t.yaml", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := c.MeterByID("flat-1"); m.Address != 11 || m.Number != "0012" {
		t.Errorf("flat-1 after upsert: %+v", m)
	}
}

func TestRemoveMeters(t *testing.T) {
	out, err := RemoveMeters([]byte(meterFile), []string{"flat-2", "flat-3"})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(meterFile, "  - id: flat-2          # block form\n    bus: bus1\n    address: 2\n", "", 1)
	want = strings.Replace(want, "  - {id: flat-3, bus: bus1, address: 3}\n", "", 1)
	if string(out) != want {
		t.Fatalf("remove:\n%s\nwant:\n%s", out, want)
	}
	if _, err := RemoveMeters([]byte(meterFile), []string{"flat-9"}); err == nil {
		t.Error("removing a meter the file does not have succeeded")
	}
}

// The downlink's meters and config text come from the wire: editing,
// redacting and unredacting never panic, and a redacted text never holds
// the password it hid.
func FuzzRemoteEdits(f *testing.F) {
	f.Add([]byte(meterFile), []byte(`[{"id":"flat-1","bus":"bus1","address":11}]`))
	f.Add([]byte(secretConfig), []byte(`[{"id":"x","bus":"y","poll":{"flow":"1s"}}]`))
	f.Add([]byte("meters:\n- id: a\n  bus: b\n"), []byte(`[{"id":"a"}]`))
	f.Add([]byte("a: 'x''y' # c\nmqtt: {password: \"p\\\"w\"}\n"), []byte(`[]`))
	f.Fuzz(func(t *testing.T, text, meters []byte) {
		var ms []json.RawMessage
		if json.Unmarshal(meters, &ms) == nil {
			_, _ = UpsertMeters(text, ms)
		}
		var ids []string
		if json.Unmarshal(meters, &ids) == nil {
			_, _ = RemoveMeters(text, ids)
		}
		red := RedactText(text)
		_ = Unredact(red, text)
		_ = hashOf(text)
	})
}
