package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://gwuser:S3cretPW@host:1883":      "tcp://gwuser:***@host:1883",
		"tls://u:p@ss@host:8883/x":             "tls://u:***@host:8883/x",
		"tcp://gwuser@host:1883":               "tcp://gwuser@host:1883",
		"tcp://host:1883":                      "tcp://host:1883",
		"not a url":                            "not a url",
		"tcp://gw:S3cret@[bad":                 "tcp://gw:***@[bad",
		"dial tcp://a:b@h1 then ws://c:d@h2/x": "dial tcp://a:***@h1 then ws://c:***@h2/x",
		"mqtts://a:b@h:1/p?user=x:y@z":         "mqtts://a:***@h:1/p?user=x:y@z",
		"see tcp://gw:pw@h and tcp://h2:1 .":   "see tcp://gw:***@h and tcp://h2:1 .",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

const secretConfig = `# the box at the water tower
gateway: {id: gw-1}
buses:
  - {name: bus1, protocol: mbus, device: /dev/ttyUSB0}
meters: []
mqtt:
  broker: tcp://gwuser:S3cretPW@127.0.0.1:1883   # the utility's broker
  username: gwuser
  password: "Hunter2-pw" # inline, for the test
buffer: {path: /tmp/x.db}
`

func TestRedactTextKeepsEverythingButSecrets(t *testing.T) {
	got := string(RedactText([]byte(secretConfig)))
	for _, s := range []string{"S3cretPW", "Hunter2-pw"} {
		if strings.Contains(got, s) {
			t.Errorf("secret %q still in:\n%s", s, got)
		}
	}
	want := strings.NewReplacer("gwuser:S3cretPW@", `gwuser:***@`, `"Hunter2-pw"`, `"***"`).Replace(secretConfig)
	want = strings.Replace(want, "tcp://gwuser:***@127.0.0.1:1883", `"tcp://gwuser:***@127.0.0.1:1883"`, 1)
	if got != want {
		t.Errorf("redacted text:\n%s\nwant:\n%s", got, want)
	}
}

func TestHashHidesSecrets(t *testing.T) {
	other := strings.NewReplacer("S3cretPW", "0therPW", "Hunter2-pw", "x").Replace(secretConfig)
	if hashOf([]byte(secretConfig)) != hashOf([]byte(other)) {
		t.Error("two files differing only in their passwords hash differently: the hash depends on the secret")
	}
	changed := strings.Replace(secretConfig, "gw-1", "gw-2", 1)
	if hashOf([]byte(secretConfig)) == hashOf([]byte(changed)) {
		t.Error("a changed gateway id keeps the hash")
	}
}

func TestProblemsHideBrokerPassword(t *testing.T) {
	bad := strings.Replace(secretConfig, "tcp://gwuser:S3cretPW@127.0.0.1:1883", "tcp://gwuser:S3cretPW@[bad", 1)
	_, err := Parse("t.yaml", []byte(bad), nil)
	if err == nil || strings.Contains(err.Error(), "S3cretPW") || !strings.Contains(err.Error(), "gwuser:***@") {
		t.Errorf("problems: %v", err)
	}
}

func TestWriteFileKeepsOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	path := filepath.Join(t.TempDir(), "tidegate.yaml")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4242 || st.Gid != 4343 || fi.Mode().Perm() != 0o604 {
		t.Errorf("after WriteFile: uid %d gid %d mode %v, want 4242 4343 -rw----r--", st.Uid, st.Gid, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("content %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// config_get, edit, push: the secrets left as *** are the running ones
// again, the edit is kept, and a secret the sender changed is the sender's.
func TestUnredactRoundTrip(t *testing.T) {
	edited := strings.Replace(string(RedactText([]byte(secretConfig))), "gw-1", "gw-2", 1)
	got := string(Unredact([]byte(edited), []byte(secretConfig)))
	want := strings.Replace(secretConfig, "gw-1", "gw-2", 1)
	want = strings.Replace(want, "tcp://gwuser:S3cretPW@127.0.0.1:1883", `"tcp://gwuser:S3cretPW@127.0.0.1:1883"`, 1)
	if got != want {
		t.Fatalf("unredacted:\n%s\nwant:\n%s", got, want)
	}
	if hashOf([]byte(got)) != hashOf([]byte(want)) {
		t.Error("hash differs")
	}
	changed := strings.Replace(edited, `password: "***"`, `password: "n3w"`, 1)
	if got := string(Unredact([]byte(changed), []byte(secretConfig))); !strings.Contains(got, `password: "n3w"`) || !strings.Contains(got, "S3cretPW") {
		t.Errorf("a changed password or the kept URL lost:\n%s", got)
	}
}
