package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"tidegate/cmd/tidegate/internal/config"
)

// withoutScanLines is text less the lines a scan adds, with `key:` lines
// that were `key: []` put back, so what remains must equal the original.
func withoutScanLines(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.Contains(l, "# found by scan") || strings.Contains(l, "# added by scan") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestAppendMeters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tidegate.yaml")
	start := config.Starter(config.StarterOptions{Broker: "tcp://127.0.0.1:1883", Protocol: "mbus"}, path)
	writeFile(t, path, string(start))
	found := []foundMeter{{Bus: "bus1", Address: 3, Note: "KAM water"}, {Bus: "bus1", Address: -1, Secondary: "12345678"}}
	res, err := appendMeters(path, found, config.Bus{Name: "bus1", Protocol: "mbus"}, nil)
	if err != nil || res.Added != 2 || res.BusAdded {
		t.Fatalf("append: %+v, %v", res, err)
	}
	// Again: nothing new, nothing written twice.
	if res, err := appendMeters(path, found, config.Bus{Name: "bus1", Protocol: "mbus"}, nil); err != nil || res.Added != 0 || len(res.Skipped) != 2 {
		t.Fatalf("second append: %+v, %v", res, err)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("appended config does not validate: %v", err)
	}
	if len(c.Meters) != 2 || c.Meters[0].ID != "bus1-3" || c.Meters[0].Address != 3 || c.Meters[1].Secondary != "12345678" {
		t.Fatalf("meters: %+v", c.Meters)
	}
	data, _ := os.ReadFile(path)
	want := strings.Replace(string(start), "meters: []", "meters:", 1)
	if got := withoutScanLines(string(data)); got != want {
		t.Errorf("the rest of the file changed:\n--- got\n%s\n--- want\n%s", got, want)
	}
	if !strings.Contains(string(data), "# found by scan: KAM water") {
		t.Errorf("no note:\n%s", data)
	}
}

// TestAppendModbusMeters: without --profile a Modbus meter is written as a
// commented entry with the profile to fill marked, and the file still
// validates; with one it is a meter.
func TestAppendModbusMeters(t *testing.T) {
	dir := t.TempDir()
	mb := filepath.Join(dir, "mb.yaml")
	start := config.Starter(config.StarterOptions{Broker: "tcp://127.0.0.1:1883"}, mb)
	writeFile(t, mb, string(start))
	nb := config.Bus{Name: "bus1", Protocol: "modbus"}
	res, err := appendMeters(mb, []foundMeter{{Bus: "bus1", Address: 5}}, nb, nil)
	if err != nil || res.ToFill != 1 || res.Added != 0 {
		t.Fatalf("modbus meter without a profile: %+v %v", res, err)
	}
	data, _ := os.ReadFile(mb)
	if !strings.Contains(string(data), "# - {id: bus1-5") || !strings.Contains(string(data), profileToFill) {
		t.Errorf("no commented entry with the profile to fill:\n%s", data)
	}
	if _, err := config.Load(mb, nil); err != nil {
		t.Fatalf("does not validate: %v", err)
	}
	writeFile(t, mb, string(start))
	res, err = appendMeters(mb, []foundMeter{{Bus: "bus1", Address: 5, Profile: "tuf2000m"}}, nb, nil)
	if err != nil || res.Added != 1 {
		t.Fatalf("with a profile: %+v %v", res, err)
	}
	c, err := config.Load(mb, nil)
	if err != nil || len(c.Meters) != 1 || c.Meters[0].Profile != "tuf2000m" || c.Meters[0].Address != 5 {
		t.Fatalf("with a profile: %+v %v", c, err)
	}
}

// TestAppendKeepsTheFile: a hand-written file (aligned comments, blank
// lines, meters in the middle) gets its new meters at the end of its meters
// list and a new bus at the end of its buses; every other byte stays; a
// meter the file has by primary address is not added again when a
// secondary scan finds it.
func TestAppendKeepsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tidegate.yaml")
	orig := `# hand-written
gateway: {id: gw7}        # the box

buses:
  - name: mb                # the cellar line
    protocol: mbus
    device: /dev/ttyUSB0

meters:
    - {id: kitchen, bus: mb, address: 7}     # flat 2

    # the next ones are in the shop
    - {id: shop,    bus: mb, address: 9}

# where readings wait
buffer: {path: ` + filepath.Join(dir, "b.db") + `}
mqtt:   {broker: "tcp://127.0.0.1:1883"}
`
	writeFile(t, path, orig)
	identity := func(f foundMeter) (int, string) {
		return map[string]int{"12345612": 7, "12345613": 20}[f.Secondary], ""
	}
	found := []foundMeter{{Bus: "mb", Address: -1, Secondary: "12345612"}, {Bus: "mb", Address: -1, Secondary: "12345613"}}
	res, err := appendMeters(path, found, config.Bus{Name: "mb", Protocol: "mbus"}, identity)
	if err != nil || res.Added != 1 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "kitchen") {
		t.Fatalf("append: %+v %v", res, err)
	}
	// A bus the file lacks is made from the scan's port settings.
	res, err = appendMeters(path, []foundMeter{{Bus: "mb2", Address: 4}}, config.Bus{Name: "mb2", Protocol: "mbus", Device: "/dev/ttyUSB1", Baud: 2400, Parity: "even"}, nil)
	if err != nil || res.Added != 1 || !res.BusAdded {
		t.Fatalf("append to a new bus: %+v %v", res, err)
	}
	data, _ := os.ReadFile(path)
	if got := withoutScanLines(string(data)); got != orig {
		t.Errorf("the rest of the file changed:\n--- got\n%s\n--- want\n%s", got, orig)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("does not validate: %v\n%s", err, data)
	}
	if len(c.Buses) != 2 || c.Buses[1].Device != "/dev/ttyUSB1" || c.Buses[1].Baud != 2400 || len(c.Meters) != 4 {
		t.Fatalf("buses %+v meters %+v\n%s", c.Buses, c.Meters, data)
	}
	// New items sit at the end of their lists, indented as the list is.
	if !strings.Contains(string(data), "    - {id: shop,    bus: mb, address: 9}\n    - {id: mb-12345613") ||
		!strings.Contains(string(data), "    device: /dev/ttyUSB0\n  - {name: mb2") {
		t.Errorf("items not at the ends of their lists:\n%s", data)
	}
}

// scan --append-config run as root leaves the config to the service user
// it belonged to (issue 23.8: the service could not read its own config).
func TestAppendMetersKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	path := filepath.Join(t.TempDir(), "tidegate.yaml")
	writeFile(t, path, string(config.Starter(config.StarterOptions{Broker: "tcp://127.0.0.1:1883", Protocol: "mbus"}, path)))
	if err := os.Chown(path, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if _, err := appendMeters(path, []foundMeter{{Bus: "bus1", Address: 3}}, config.Bus{Name: "bus1", Protocol: "mbus"}, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4242 || st.Gid != 4343 || fi.Mode().Perm() != 0o640 {
		t.Errorf("after append: uid %d gid %d mode %v, want 4242 4343 -rw-r-----", st.Uid, st.Gid, fi.Mode().Perm())
	}
}
