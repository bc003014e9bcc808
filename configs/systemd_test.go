package configs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitFile is a systemd unit as key → values, per section; a key given
// twice (DeviceAllow) keeps every value, and an empty assignment resets the
// list as systemd does.
type unitFile map[string]map[string][]string

func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, sec := unitFile{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			sec = strings.Trim(line, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: not a unit line: %q", path, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if v == "" {
				u[sec][k] = nil
				continue
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unitFile) words(sec, key string) []string {
	var w []string
	for _, v := range u[sec][key] {
		w = append(w, strings.Fields(v)...)
	}
	return w
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

const unitPath = "systemd/tidegate.service"

// The unit lets the daemon open the serial ports of the boxes it runs on
// (i.MX, SC16IS7xx and OMAP UARTs too), write the UUCP lock files under
// ProtectSystem=strict, and starts once the clock is set.
func TestUnitDevicesLockAndClock(t *testing.T) {
	u := readUnit(t, unitPath)
	svc := u["Service"]
	if got := svc["DevicePolicy"]; len(got) != 1 || got[0] != "closed" {
		t.Errorf("DevicePolicy %q, want closed (serial ports only)", got)
	}
	allowed := map[string]bool{}
	for _, v := range svc["DeviceAllow"] {
		f := strings.Fields(v)
		if len(f) == 2 && strings.Contains(f[1], "r") && strings.Contains(f[1], "w") {
			allowed[f[0]] = true
		}
	}
	for _, class := range []string{"ttyUSB", "ttyS", "ttyACM", "ttyAMA", "ttymxc", "ttySC", "ttyO"} {
		if !allowed["char-"+class] {
			t.Errorf("DeviceAllow has no char-%s rw: /dev/%s0 cannot be opened", class, class)
		}
	}

	if w := u.words("Service", "ProtectSystem"); has(w, "strict") {
		rw := u.words("Service", "ReadWritePaths")
		if !has(rw, "/run/lock") && !has(rw, "-/run/lock") {
			t.Errorf("ProtectSystem=strict without ReadWritePaths=/run/lock: LCK..ttyUSB0 is never written (ReadWritePaths %q)", rw)
		}
	}

	after, wants := u.words("Unit", "After"), append(u.words("Unit", "Wants"), u.words("Unit", "Requires")...)
	if !has(after, "time-sync.target") {
		t.Errorf("After %q: no time-sync.target, the daemon starts on an unset clock", after)
	}
	if !has(wants, "time-sync.target") {
		t.Errorf("Wants %q: no time-sync.target, the ordering waits for nothing when nothing else pulls it in", wants)
	}

	// The socket is 0660 in api.group: its folder must let others through.
	if m := svc["RuntimeDirectoryMode"]; len(m) != 1 || len(m[0]) < 3 || (m[0][len(m[0])-1]-'0')&1 == 0 {
		t.Errorf("RuntimeDirectoryMode %q: a separate api.group cannot reach the socket", m)
	}
	if got := svc["Type"]; len(got) != 1 || got[0] != "notify" {
		t.Errorf("Type %q, want notify", got)
	}
	if len(svc["WatchdogSec"]) != 1 {
		t.Errorf("no WatchdogSec: a wedged daemon is never restarted")
	}
}

// systemd-analyze verify finds nothing to say about the unit. Its binary is
// not installed here, so the check runs on a copy that names this test's
// own executable in its place (verify only checks that it can be run).
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the unit is not verified here")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "/usr/bin/tidegate ") {
		t.Fatalf("%s does not run /usr/bin/tidegate, where the package installs it", unitPath)
	}
	unit := filepath.Join(t.TempDir(), "tidegate.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/bin/tidegate ", self+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
