package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCmd runs one tidegate invocation in-process and returns its exit code and output.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"version"}, exitOK, "tidegate ", ""},
		{[]string{"no-such-verb"}, exitUsage, "", "unknown command"},
		{nil, exitUsage, "", "usage: tidegate"},
		{[]string{"help"}, exitOK, "exit codes", ""},
	}
	for _, tt := range tests {
		code, out, errOut := runCmd(t, "", tt.args...)
		if code != tt.code || !strings.Contains(out, tt.inStdout) || !strings.Contains(errOut, tt.inStderr) {
			t.Errorf("tidegate %v: code %d stdout %q stderr %q; want code %d, stdout with %q, stderr with %q",
				tt.args, code, out, errOut, tt.code, tt.inStdout, tt.inStderr)
		}
	}
}
