package main

import (
	"bytes"
	"os"
	"path/filepath"
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
	if sum.gateway != "demo-gw" || sum.meters != len(child(doc, "meters").Content) || sum.buses != 2 || sum.prefix != get(doc, "mqtt", "topic_prefix") {
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
	v.summary()
	out := b.String()
	for _, want := range []string{"flat-02", "1.5000", "0.0020", "self_rotation", "flat-03", "leak", "not json", "saw 3 messages, 2 records", "phantom removed 0.0020 m3"} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %q:\n%s", want, out)
		}
	}
}
