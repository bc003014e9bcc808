package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSamplesCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := runSamples(context.Background(), []string{"--days", "3", "--meters", "10", "--seed", "2", "--interval", "60s", "--out", dir}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for name, header := range map[string]string{
		"samples.csv": "time,meter,forward_m3,reverse_m3,flow_m3h",
		"truth.csv":   "time,meter,real_use_m3,real_backflow_m3,phantom_fwd_m3,phantom_rev_m3,leak,surge",
	} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		lines := 0
		for sc.Scan() {
			if lines == 0 && sc.Text() != header {
				t.Errorf("%s header %q", name, sc.Text())
			}
			if lines == 1 {
				ts := strings.SplitN(sc.Text(), ",", 2)[0]
				if _, err := time.Parse(time.RFC3339, ts); err != nil {
					t.Errorf("%s: time %q: %v", name, ts, err)
				}
			}
			lines++
		}
		f.Close()
		// 30 meter-days at one poll a minute.
		if want := 1 + 10*3*24*60; lines != want {
			t.Errorf("%s: %d lines, want %d", name, lines, want)
		}
	}
	for _, bad := range [][]string{{"--interval", "soon", "--out", dir}, {"--days", "0", "--out", dir}, {}} {
		if code := runSamples(context.Background(), bad, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
