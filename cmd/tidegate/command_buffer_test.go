package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tidegate/buffer"
	"tidegate/reading"
)

func makeBufferFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "buffer.db")
	// Seqs from 1: a fresh file otherwise numbers from the clock.
	b, err := buffer.Open(path, buffer.Options{Clock: func() time.Time { return time.UnixMicro(0) }})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	_, err = b.Append(context.Background(),
		reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m1", Received: at, Forward: 12.5, Has: reading.HasForward}},
		reading.Record{Kind: reading.KindBilling, Reading: &reading.Reading{Meter: "m1", Received: at.Add(time.Minute), Forward: 12.6}},
		reading.Record{Kind: reading.KindEvent, Event: &reading.Event{Time: at.Add(2 * time.Minute), Meter: "m1", Type: "leak"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBufferCommand(t *testing.T) {
	path := makeBufferFile(t)
	tests := []struct {
		name     string
		args     []string
		code     int
		inStdout []string
		inStderr string
	}{
		{"stats", []string{"buffer", "stats", "--path", path}, exitOK,
			[]string{"held      3 records (readings 1, billing 1, summaries 0, events 1)", "first held 1, last 3", "oldest    2026-11-22T10:00:00Z", "closed cleanly"}, ""},
		{"export all", []string{"buffer", "export", "--path", path}, exitOK,
			[]string{`"seq":1,"kind":"reading"`, `"seq":2,"kind":"billing"`, `"seq":3,"kind":"event"`}, ""},
		{"export range", []string{"buffer", "export", "--path", path, "--from", "2", "--to", "2"}, exitOK,
			[]string{`"seq":2,`}, ""},
		{"compact", []string{"buffer", "compact", "--path", path}, exitOK, []string{"compacted " + path}, ""},
		{"stats after compact", []string{"buffer", "stats", "--path", path}, exitOK, []string{"held      3 records"}, ""},
		{"no subcommand", []string{"buffer"}, exitUsage, nil, "expected 'buffer stats'"},
		{"bad subcommand", []string{"buffer", "shrink"}, exitUsage, nil, "unknown subcommand"},
		{"backwards range", []string{"buffer", "export", "--path", path, "--from", "3", "--to", "1"}, exitUsage, nil, "before --from"},
		{"missing file", []string{"buffer", "stats", "--path", path + ".nope"}, exitFailure, nil, "no buffer file at"},
		{"explicit config missing", []string{"buffer", "stats", "--config", path + ".yaml"}, exitUsage, nil, "reading the config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.inStderr) {
				t.Fatalf("code %d stderr %q; want %d and %q", code, errOut, tt.code, tt.inStderr)
			}
			for _, want := range tt.inStdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
	// Export is JSON lines in the record's one encoding (as the uplink sends
	// it): snake_case, values intact, no zero times.
	_, out, _ := runCmd(t, "", "buffer", "export", "--path", path, "--from", "1", "--to", "1")
	var rec reading.RecordJSON
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil ||
		rec.Forward == nil || *rec.Forward != 12.5 || rec.Seq != 1 || strings.Contains(out, "0001-01-01") || strings.Contains(out, "MeterTime") {
		t.Errorf("export --from 1 --to 1 = %q", out)
	}
	// stats --json: snake_case, and the bounds the daemon opened the file
	// with, whether the file is named by --path or by --config.
	_, out, _ = runCmd(t, "", "buffer", "stats", "--path", path, "--json")
	var s buffer.Stats
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Depth != 3 || s.LastSeq != 3 || !strings.Contains(out, `"last_seq": 3`) {
		t.Errorf("stats --json = %q (%v)", out, err)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("gateway: {id: gw}\nbuffer: {path: "+path+"}\nbuses:\n  - {name: b, protocol: mbus, device: /dev/null}\nmeters:\n  - {id: m2, bus: b, address: 2}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n"), 0o600)
	code, outCfg, errOut := runCmd(t, "", "buffer", "stats", "--config", cfg, "--json")
	var sc buffer.Stats
	if err := json.Unmarshal([]byte(outCfg), &sc); code != exitOK || err != nil {
		t.Fatalf("stats --config: %d %q %q", code, outCfg, errOut)
	}
	if sc.MaxBytes != s.MaxBytes || sc.MaxRecords != s.MaxRecords || sc.MaxSize != s.MaxSize || s.MaxBytes != buffer.DefaultMaxBytes {
		t.Errorf("bounds by --path %d/%d/%d, by --config %d/%d/%d", s.MaxRecords, s.MaxBytes, s.MaxSize, sc.MaxRecords, sc.MaxBytes, sc.MaxSize)
	}
	// The file does not know its gateway: the config whose buffer it is
	// does, or --gateway; then the lines carry the uplink's ids. A file
	// named by --path alone (perhaps copied from another box) gets none.
	for _, c := range []struct {
		args []string
		id   string
	}{
		{[]string{"--config", cfg}, `"id":"gw:1"`},
		{[]string{"--path", path, "--gateway", "gw-7"}, `"id":"gw-7:1"`},
		{[]string{"--path", path}, ""},
	} {
		code, out, errOut := runCmd(t, "", append([]string{"buffer", "export", "--from", "1", "--to", "1"}, c.args...)...)
		if code != exitOK || (c.id == "") == strings.Contains(out, `"id":`) || !strings.Contains(out, c.id) {
			t.Errorf("export %v: exit %d, want %s:\n%s%s", c.args, code, c.id, out, errOut)
		}
	}
}

func TestBufferCommandLockedByDaemon(t *testing.T) {
	path := makeBufferFile(t)
	b, err := buffer.Open(path, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, sub := range []string{"stats", "export", "compact"} {
		code, _, errOut := runCmd(t, "", "buffer", sub, "--path", path)
		if code != exitFailure || !strings.Contains(errOut, "in use by the running tidegate daemon") {
			t.Errorf("buffer %s on a locked file: code %d, stderr %q", sub, code, errOut)
		}
	}
}

// A file with a damaged key ("key out of order"): export and stats show
// what the daemon would salvage, say so on stderr, and leave the file as
// it was. (Before: both refused the file outright, so a technician copying
// a card's buffer got nothing.)
func TestBufferCommandDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b, err := buffer.Open(path, buffer.Options{Clock: func() time.Time { return time.UnixMicro(0) }})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		recs := make([]reading.Record, 100)
		for j := range recs {
			recs[j] = reading.Record{Kind: reading.KindReading, Reading: &reading.Reading{Meter: "m1", Received: at.Add(time.Duration(100*i+j) * time.Minute), Forward: float64(100*i + j), Has: reading.HasForward}}
		}
		if _, err := b.Append(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	raw, _ := os.ReadFile(path)
	key := []byte{0, 0, 0, 0, 0, 0, 0, 5, 3, byte(reading.KindReading)} // seq 5, record format 3
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	for i := strings.Index(string(raw), string(key)); i >= 0; {
		f.WriteAt([]byte{0x7f}, int64(i))
		j := strings.Index(string(raw[i+1:]), string(key))
		if j < 0 {
			break
		}
		i += j + 1
	}
	f.Close()
	before, _ := os.ReadFile(path)
	if _, err := buffer.Open(path, buffer.Options{NoRecover: true}); !errors.Is(err, buffer.ErrCorrupt) {
		t.Fatalf("the damaged file opens as %v, want ErrCorrupt", err)
	}
	code, out, errOut := runCmd(t, "", "buffer", "export", "--path", path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 299 || strings.Contains(out, `"seq":5,`) || !strings.Contains(out, `"seq":300,`) ||
		!strings.Contains(errOut, "damaged") || !strings.Contains(errOut, "299 records readable, 1 lost (seqs 5;") {
		t.Fatalf("export of a damaged file: exit %d, %d lines, stderr %q", code, len(lines), errOut)
	}
	code, out, errOut = runCmd(t, "", "buffer", "stats", "--path", path)
	if code != exitOK || !strings.Contains(out, "held      299 records") || !strings.Contains(out, "file      "+path) || !strings.Contains(out, "damaged") {
		t.Fatalf("stats of a damaged file: exit %d\n%s%s", code, out, errOut)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("the damaged file was modified by a read-only verb")
	}
	if m, _ := filepath.Glob(path + "*"); len(m) != 2 { // the file and its seq floor
		t.Fatalf("files beside the buffer: %v", m)
	}
}
