package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// A stand-alone read a technician can trust, against metersim: a profile
// that does not fit the meter reads implausible, not good; the meter is
// named once in errors; --raw fits 100 columns with integers as integers.
func TestReadStandalone(t *testing.T) {
	if testing.Short() {
		t.Skip("needs metersim")
	}
	bin := buildBinaries(t)
	ports := startMetersim(t, bin, t.TempDir(), `buses:
  - name: rtu
    protocol: modbus
    baud: 9600
    meters:
      - {id: m3, address: 3, profile: dynaflox-ultrad, water: {profile: vacant, leaks: [{after: 0s, for: 1000h, rate_lh: 500}]}}
      - {id: m4, address: 4, profile: tuf2000m, water: {profile: vacant, leaks: [{after: 0s, for: 1000h, rate_lh: 500}]}}
`)
	port := ports["rtu"]

	code, out, errOut := runCmd(t, "", "read", "--port", port, "--address", "3", "--profile", "dynaflox-ultrad")
	if code != exitOK || !strings.Contains(out, "quality  good") || !strings.Contains(out, "flow     0.5000 m3/h") {
		t.Errorf("the right profile: code %d\n%s%s", code, out, errOut)
	}
	// A TUF-2000M read with the Dynaflox map: its float flow as Dynaflox's
	// integer L/h is 16 m3/h, beyond what that meter can show.
	code, out, errOut = runCmd(t, "", "read", "--port", port, "--address", "4", "--profile", "dynaflox-ultrad")
	if code != exitOK || !strings.Contains(out, "quality  implausible") || !strings.Contains(out, "outside the profile's physical range -10..10") {
		t.Errorf("the wrong profile: code %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCmd(t, "", "read", "--port", port, "--address", "9", "--profile", "dynaflox-ultrad", "--timeout", "100ms")
	if code != exitFailure || !strings.HasPrefix(errOut, "tidegate read: meter 9: ") || strings.Contains(errOut, "meter meter") {
		t.Errorf("no meter at 9: code %d stderr %q", code, errOut)
	}

	// The commonest wiring mistake, a wrong baud, fails as on a real line.
	code, out, errOut = runCmd(t, "", "read", "--port", port, "--baud", "19200", "--address", "3", "--profile", "dynaflox-ultrad", "--timeout", "300ms")
	if code != exitFailure || !strings.HasPrefix(errOut, "tidegate read: meter 3: ") {
		t.Errorf("read at 19200 of a 9600-baud meter: code %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runCmd(t, "", "read", "--port", port, "--address", "3", "--raw", "0", "17")
	if code != exitOK {
		t.Fatalf("--raw: code %d %s", code, errOut)
	}
	for _, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > rawWidth {
			t.Errorf("--raw line of %d columns: %q", n, l)
		}
	}
	// Register 1 holds 500 (L/h): uint32 ABCD over registers 0-1 is 500,
	// over 1-2 is 500<<16; printed as integers, not 3.2768e+07.
	if !regexpRow(out, "uint32 ABCD", "500", "32768000") || strings.Contains(rowOf(out, "uint32 ABCD"), "e+") {
		t.Errorf("--raw integers:\n%s", out)
	}
	code, out, errOut = runCmd(t, "", "read", "--port", port, "--address", "3", "--raw", "0", "4", "--as", "uint32:CDAB", "--json")
	var regs []struct {
		Address int
		Values  map[string]float64
	}
	if code != exitOK || json.Unmarshal([]byte(out), &regs) != nil || len(regs) != 4 || regs[1].Values["uint32 CDAB"] != 500 || len(regs[1].Values) != 1 {
		t.Errorf("--raw --as uint32:CDAB --json: code %d %s%s", code, out, errOut)
	}
}

func rowOf(table, label string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), label+" ") {
			return l
		}
	}
	return ""
}

func regexpRow(table, label string, cells ...string) bool {
	f := strings.Fields(rowOf(table, label))
	if len(f) < 2+len(cells) {
		return false
	}
	for i, c := range cells {
		if f[2+i] != c {
			return false
		}
	}
	return true
}

// Flags after the METER argument are flags: `read flat-01 --json` asks the
// daemon (none here) instead of complaining about the argument count.
func TestReadFlagsAfterMeter(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	code, _, errOut := runCmd(t, "", "read", "flat-01", "--json", "--socket", sock)
	if strings.Contains(errOut, "expected one METER") || !strings.Contains(errOut, "no daemon at "+sock) || code != exitFailure {
		t.Errorf("read flat-01 --json: code %d stderr %q", code, errOut)
	}
}
