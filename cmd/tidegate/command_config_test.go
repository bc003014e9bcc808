package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden expected.err files")

// TestConfigValidateGolden runs 'config validate' on every folder under
// testdata/config: expected.err holds exactly the problems it must print
// (empty: the file is valid and the exit code is 0).
func TestConfigValidateGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/config/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg := filepath.Join(dir, "config.yaml")
			code, out, errOut := runCmd(t, "", "config", "validate", cfg)
			// The last stderr line is the summary with the path; the rest are the problems.
			var problems []string
			for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
				if l != "" && !strings.HasPrefix(l, "tidegate config:") {
					problems = append(problems, l)
				}
			}
			got := strings.Join(problems, "\n")
			if got != "" {
				got += "\n"
			}
			golden := filepath.Join(dir, "expected.err")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("problems differ\n got:\n%s\nwant:\n%s", got, want)
			}
			wantCode := exitUsage
			if len(want) == 0 {
				wantCode = exitOK
				if !strings.Contains(out, ": ok (") {
					t.Errorf("valid config: stdout %q lacks the ok line", out)
				}
			}
			if code != wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, wantCode, errOut)
			}
		})
	}
}

func TestConfigInit(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tidegate.yaml")
	code, _, errOut := runCmd(t, "", "config", "init", "-o", file, "--gateway", "gw-77", "--protocol", "mbus", "--device", "/dev/ttyS3", "--broker", "tcp://127.0.0.1:1883")
	if code != exitOK {
		t.Fatalf("init: code %d: %s", code, errOut)
	}
	code, out, errOut := runCmd(t, "", "config", "validate", file)
	if code != exitOK || !strings.Contains(out, "gateway gw-77, 1 buses, 0 meters") {
		t.Fatalf("validate of the starter config: code %d out %q err %q", code, out, errOut)
	}
	data, _ := os.ReadFile(file)
	for _, want := range []string{"protocol: mbus", "baud: 2400", "parity: even", "device: /dev/ttyS3", "# "} {
		if !strings.Contains(string(data), want) {
			t.Errorf("starter config lacks %q", want)
		}
	}
	// A second init must not clobber a technician's edited file.
	if code, _, errOut := runCmd(t, "", "config", "init", "-o", file); code != exitFailure || !strings.Contains(errOut, "--force") {
		t.Errorf("init over an existing file: code %d err %q; want refusal naming --force", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "config", "init", "--protocol", "profibus"); code != exitUsage || !strings.Contains(errOut, "profibus") {
		t.Errorf("init with a bad protocol: code %d err %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "", "config", "frobnicate"); code != exitUsage {
		t.Errorf("unknown subcommand: code %d, want %d", code, exitUsage)
	}
	if code, _, errOut := runCmd(t, "", "config", "validate", filepath.Join(dir, "missing.yaml")); code != exitUsage || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: code %d err %q", code, errOut)
	}
}

// run refuses a config naming an unknown profile, like any other problem,
// and says where and what is near.
func TestRunRefusesUnknownProfile(t *testing.T) {
	code, _, errOut := runCmd(t, "", "run", "--config", "testdata/config/profile-typo/config.yaml")
	if code != exitUsage || !strings.Contains(errOut, `config.yaml:26:14: meters[0].profile: no profile named "dynaflox-ultra"; nearest: dynaflox-ultrad`) ||
		!strings.Contains(errOut, "not starting") {
		t.Errorf("run with a profile typo: code %d stderr %q; want 2 with the position and the nearest name", code, errOut)
	}
}
