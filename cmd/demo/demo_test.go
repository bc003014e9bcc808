package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDemoConfig: the shipped demo config, pointed at this run's ports,
// broker, socket and buffer, still validates and keeps everything else.
func TestDemoConfig(t *testing.T) {
	dir := t.TempDir()
	ports := map[string]string{"modbus-1": "/dev/pts/77", "mbus-1": "127.0.0.1:4001"}
	path, sum, err := demoConfig("../../configs/demo.yaml", dir, "127.0.0.1:18830", ports)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	doc := root.Content[0]
	buses := child(doc, "buses").Content
	got := map[string]string{}
	for _, b := range buses {
		got[get(b, "name")] = get(b, "device") + "|" + get(b, "tcp")
	}
	if got["modbus-1"] != "/dev/pts/77|" || got["mbus-1"] != "|127.0.0.1:4001" {
		t.Errorf("ports not applied: %v", got)
	}
	if get(doc, "mqtt", "broker") != "tcp://127.0.0.1:18830" || get(doc, "api", "socket") != filepath.Join(dir, "api.sock") || get(doc, "buffer", "path") != filepath.Join(dir, "buffer.db") {
		t.Errorf("broker/socket/buffer not the run's own:\n%s", data)
	}
	if sum.gateway != "demo-gw" || sum.meters != len(child(doc, "meters").Content) || sum.buses != 3 || sum.prefix != get(doc, "mqtt", "topic_prefix") {
		t.Errorf("summary %+v does not match the config", sum)
	}
	if !strings.Contains(string(data), "#") {
		t.Error("comments of the demo config were lost")
	}
}

func TestViewRecords(t *testing.T) {
	var b bytes.Buffer
	v := newView(&b)
	v.onMessage("demo/v1/gw/readings", []byte(`{"batch":[{"id":"gw:1","meter":"flat-02","forward_m3":1.5,"filter":{"consumption_m3":0,"phantom_m3":0.002,"flags":["self_rotation"]}}]}`))
	v.onMessage("demo/v1/gw/events", []byte(`{"id":"gw:2","meter":"flat-03","type":"leak"}`))
	v.onMessage("demo/v1/gw/status", []byte(`not json`))
	v.onMessage("demo/v1/gw/readings", []byte(`{"batch":[{"id":"gw:3","meter":"flat-04","quality":"error","error":"meter flat-04: timeout","status":["leak"]}]}`))
	v.onMessage("demo/v1/gw/events", []byte(`{"id":"gw:4","meter":"flat-04","type":"meter_offline","message":"meter flat-04: timeout"}`))
	v.onMessage("demo/v1/gw/status", []byte(`{"gateway":"gw","state":"online","time":"2026-12-01T21:05:10Z","version":"v1-abc","config_hash":"0123456789abcdef0123","meters":["a","b"]}`))
	v.summary()
	out := b.String()
	for _, want := range []string{"flat-02", "1.500", "0.002", "self_rotation", "flat-03", "leak", "not json", "saw 6 messages, 4 records",
		"phantom removed   0.002 m3", "error: timeout", "meter_offline: timeout",
		"gw online, config_hash 0123456789abcdef0123, meters 2, version v1-abc"} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %q:\n%s", want, out)
		}
	}
}

// The demo tells its story by itself within its minute: a leak flagged by
// the filter, phantom volume removed on a vacant flat, a faulty meter going
// offline with its reason; then it stops every process and exits 0.
func TestDemoTellsItsStory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for a minute")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "tidegate/cmd/tidegate", "tidegate/cmd/metersim").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out, errb bytes.Buffer
	t.Chdir("../..") // the demo's default configs are relative to the repository
	code := run(context.Background(), []string{"--bin", bin}, &out, &errb)
	text := out.String()
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, text, errb.String())
	}
	story := map[string]*regexp.Regexp{
		"a leak flagged by the filter":        regexp.MustCompile(`readings flat-11 .* leak( |$)`),
		"phantom removed on the vacant flat":  regexp.MustCompile(`readings flat-12 +[0-9.]+ +0\.000 +0\.0*[1-9][0-9]* +self_rotation`),
		"the faulty meter offline, and why":   regexp.MustCompile(`events +flat-04 .* meter_offline: read .*timeout`),
		"a legend for the columns":            regexp.MustCompile(`PHANTOM +volume the filter removed`),
		"how long it runs and how to stop it": regexp.MustCompile(`runs +1m0s, then stops everything \(Ctrl-C stops it sooner; -seconds 0`),
	}
	for what, re := range story {
		if !re.MatchString(text) {
			t.Errorf("the demo did not show %s:\n%s", what, text)
		}
	}
	m := regexp.MustCompile(`logs kept: (\S+), (\S+)\n`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no 'logs kept' line:\n%s", text)
	}
	for _, f := range m[1:] {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("log %s not kept: %v", f, err)
		}
	}
	os.RemoveAll(filepath.Dir(m[1]))
}
