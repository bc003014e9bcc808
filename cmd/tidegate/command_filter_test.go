package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tidegate/reading"
)

func TestFilterCommand(t *testing.T) {
	in := samplesHeader + "\n" +
		"2026-03-02T03:00:00Z,a,10.000,2.000,\n" +
		"2026-03-02T03:00:00Z,b,1.0,0,0\n" +
		// a: surge with no use, forward 4 L and reverse 3 L in the same poll.
		"2026-03-02T03:01:00Z,a,10.004,2.003,0.2\n" +
		"2026-03-02T03:01:00Z,b,1.02,0,1.2\n" +
		// b: totals go backwards: a reset, not negative use.
		"2026-03-02T03:02:00Z,b,0.5,0,0\n" +
		"2026-03-02T03:03:00Z,b,0.51,0,0\n"
	code, out, errOut := runCmd(t, in, "filter")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != filteredHeader || len(lines) != 1+4 {
		t.Fatalf("output:\n%s", out)
	}
	rows := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.SplitN(l, ",", 3)
		rows[f[0][11:16]+f[1]] = f[2]
	}
	want := map[string]string{
		"03:01a": "0.000000,0.000000,0.004000,self_rotation", // 3 L reverse at the initial ratio 0.75 is 4 L forward
		"03:01b": "0.020000,0.000000,0.000000,",
		"03:02b": "0.000000,0.000000,0.000000,meter_fault",
		"03:03b": "0.010000,0.000000,0.000000,",
	}
	for k, v := range want {
		if rows[k] != v {
			t.Errorf("%s: got %q, want %q", k, rows[k], v)
		}
	}
}

func TestFilterCommandBadInput(t *testing.T) {
	tests := []struct{ name, in, inErr string }{
		{"empty", "", "line 1: empty input"},
		{"header", "time,meter,forward\n", "line 1: header"},
		{"fields", samplesHeader + "\n2026-03-02T03:00:00Z,a,1,2\n", "line 2: bad samples row: want 5 fields"},
		{"time", samplesHeader + "\n2026-03-02T03:00:00Z,a,1,2,\nyesterday,a,1,2,\n", "line 3: bad samples row: time"},
		{"negative", samplesHeader + "\n2026-03-02T03:00:00Z,a,-1,2,\n", "line 2: bad samples row: forward_m3"},
		{"nan", samplesHeader + "\n2026-03-02T03:00:00Z,a,1,NaN,\n", "reverse_m3"},
		{"meter", samplesHeader + "\n2026-03-02T03:00:00Z,,1,2,\n", "empty meter"},
	}
	for _, tt := range tests {
		code, _, errOut := runCmd(t, tt.in, "filter")
		if code != exitUsage || !strings.Contains(errOut, tt.inErr) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, errOut, tt.inErr)
		}
	}
	// Rows before the bad one are still filtered and written.
	in := samplesHeader + "\n2026-03-02T03:00:00Z,a,1,0,\n2026-03-02T03:01:00Z,a,1.005,0,\nbad\n"
	code, out, _ := runCmd(t, in, "filter")
	if code != exitUsage || !strings.Contains(out, "2026-03-02T03:01:00Z,a,0.005000") {
		t.Errorf("rows before a bad one lost: exit %d\n%s", code, out)
	}
}

func TestFilterScoreCommand(t *testing.T) {
	dir := t.TempDir()
	truth := filepath.Join(dir, "truth.csv")
	tr := truthHeader + "\n2026-03-02T03:01:00Z,a,0,0,0.005,0.004,false,true\n2026-03-02T03:02:00Z,a,0.1,0,0,0,false,false\n"
	if err := os.WriteFile(truth, []byte(tr), 0o644); err != nil {
		t.Fatal(err)
	}
	in := samplesHeader + "\n2026-03-02T03:00:00Z,a,10.000,2.000,\n2026-03-02T03:01:00Z,a,10.005,2.004,\n2026-03-02T03:02:00Z,a,10.105,2.004,\n"
	code, out, errOut := runCmd(t, in, "filter", "score", "--truth", truth)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "filter: 1 meters") || !strings.Contains(out, "phantom removed 100.00%") ||
		!strings.Contains(out, "naive forward-reverse") {
		t.Errorf("score output:\n%s", out)
	}
	if code, _, _ := runCmd(t, in, "filter", "score"); code != exitUsage {
		t.Errorf("score without --truth: exit %d", code)
	}
}

func FuzzParseSampleRow(f *testing.F) {
	for _, s := range []string{"2026-03-02T03:00:00Z,a,10.000,2.000,", "2026-03-02T03:00:00+01:00,m1,1e3,0,-0.5",
		",,,,", "x,y,z", "2026-03-02T03:00:00Z,a,1,2,3,4", "2026-03-02T03:00:00.123Z,a,Inf,0,"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseSampleRow(b)
		if err != nil {
			return
		}
		if r.Meter == "" || r.Forward < 0 || r.Reverse < 0 || r.Received.IsZero() && false {
			t.Fatalf("accepted a bad row %q: %+v", b, r)
		}
		// What parses must survive the output encoder.
		r.Filter = &reading.Filtered{Consumption: r.Forward}
		out := appendFiltered(nil, r)
		if _, err := time.Parse(time.RFC3339, strings.SplitN(string(out), ",", 2)[0]); err != nil && r.Received.Year() < 10000 && r.Received.Year() >= 0 {
			t.Fatalf("output time unparsable: %q", out)
		}
	})
}

// Golden cases, one folder each: samples.csv in, expected.csv out. Each was
// a bug once: rollover vs reset, surge halves split across 10-s polls, and a
// real use paired with a real backflow ten minutes before it.
func TestFilterGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/filter/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		in, err := os.ReadFile(filepath.Join(dir, "samples.csv"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, "expected.csv"))
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCmd(t, string(in), "filter")
		if code != exitOK || out != string(want) {
			t.Errorf("%s: exit %d %s\ngot:\n%s\nwant:\n%s", dir, code, errOut, out, want)
		}
	}
}

// TestFilterCommandSingleTotal: an empty reverse_m3 is a meter with one
// total (CJ/T 188). A small step back is the total netting out reverse
// flow, paired with the forward it cancels; it is no reset.
func TestFilterCommandSingleTotal(t *testing.T) {
	in := samplesHeader + "\n" +
		"2026-03-02T03:00:00Z,c,10.000,,\n" +
		"2026-03-02T03:01:00Z,c,10.004,,\n" +
		"2026-03-02T03:02:00Z,c,10.001,,-0.1\n" +
		"2026-03-02T03:03:00Z,c,10.051,,\n"
	code, out, errOut := runCmd(t, in, "filter")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "meter_fault") {
		t.Fatalf("a 3 L step back of a single total taken for a reset:\n%s", out)
	}
	var cons float64
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		var c float64
		fmt.Sscanf(strings.Split(l, ",")[2], "%f", &c)
		cons += c
	}
	// 4 L up, 3 back (phantom), 50 L of use: 51 L of the total, 3 L of it phantom.
	if cons < 0.050-1e-9 || cons > 0.051+1e-9 || !strings.Contains(out, "self_rotation") {
		t.Fatalf("consumption %.4f m3 (want 0.050..0.051):\n%s", cons, out)
	}
}
