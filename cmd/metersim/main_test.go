package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// metersim --help and metersim samples --help exit 0 with every flag on stdout.
func TestHelp(t *testing.T) {
	for name, v := range map[string]func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int{
		"metersim": func(ctx context.Context, a []string, o, e *bytes.Buffer) int { return runSimulator(ctx, a, o, e) },
		"samples":  func(ctx context.Context, a []string, o, e *bytes.Buffer) int { return runSamples(ctx, a, o, e) },
	} {
		want := map[string][]string{
			"metersim": {"-config", "-ports", "-speed", "-seed", "-v"},
			"samples":  {"-days", "-seed", "-meters", "-interval", "-start", "-out"},
		}[name]
		for _, h := range []string{"--help", "-h"} {
			var out, errb bytes.Buffer
			code := v(context.Background(), []string{h}, &out, &errb)
			if code != 0 || errb.Len() != 0 || !strings.HasPrefix(out.String(), "usage: metersim") {
				t.Errorf("%s %s: code %d stdout %q stderr %q", name, h, code, out.String(), errb.String())
			}
			for _, f := range want {
				if !strings.Contains(out.String(), "  "+f) {
					t.Errorf("%s %s: no %s in\n%s", name, h, f, out.String())
				}
			}
		}
		var out, errb bytes.Buffer
		if code := v(context.Background(), []string{"--bogus"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: metersim") {
			t.Errorf("%s --bogus: code %d stderr %q", name, code, errb.String())
		}
	}
}
